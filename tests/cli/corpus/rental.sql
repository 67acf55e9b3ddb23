-- A film-rental schema in the style of the public sample databases: enums, domains, arrays, full-text columns,
-- SETOF table rows, OUT and INOUT parameters, RETURNS TABLE, defaults, variadics and overloads.
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE DOMAIN year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE TABLE film (
    film_id serial PRIMARY KEY,
    title text NOT NULL,
    release_year year,
    rental_rate numeric(4, 2) NOT NULL DEFAULT 4.99,
    rating mpaa_rating DEFAULT 'G',
    special_features text[],
    fulltext tsvector,
    last_update timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE customer (customer_id serial PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
                       email text, active boolean NOT NULL DEFAULT true, create_date date NOT NULL DEFAULT '2024-01-01');
CREATE TABLE inventory (inventory_id serial PRIMARY KEY, film_id int NOT NULL REFERENCES film, store_id int NOT NULL);
CREATE TABLE rental (rental_id serial PRIMARY KEY, rental_date timestamptz NOT NULL, inventory_id int NOT NULL,
                     customer_id int NOT NULL, return_date timestamptz);
CREATE TABLE payment (payment_id serial, customer_id int NOT NULL, amount numeric(5, 2) NOT NULL,
                      payment_date timestamptz NOT NULL);
INSERT INTO film (title, release_year, rating, special_features, fulltext)
VALUES ('Academy Dinosaur', 2006, 'PG', '{Trailers,"Deleted Scenes"}', to_tsvector('academy dinosaur')),
       ('Ace Goldfinger', 2006, 'G', '{Trailers}', to_tsvector('ace goldfinger'));
INSERT INTO customer (first_name, last_name, email) VALUES ('Mary', 'Smith', 'mary@example.org'), ('Pat', 'Lee', NULL);
INSERT INTO inventory (film_id, store_id) VALUES (1, 1), (1, 2), (2, 1);
INSERT INTO rental (rental_date, inventory_id, customer_id) VALUES ('2024-05-01', 1, 1);
INSERT INTO payment (customer_id, amount, payment_date) VALUES (1, 2.99, '2024-05-01'), (1, 0.99, '2024-05-02');

CREATE FUNCTION inventory_in_stock(p_inventory_id integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN NOT EXISTS (SELECT 1 FROM rental WHERE inventory_id = p_inventory_id AND return_date IS NULL);
END $$;
CREATE FUNCTION film_in_stock(p_film_id integer, p_store_id integer, OUT p_film_count integer)
RETURNS SETOF integer LANGUAGE sql AS $$
    SELECT inventory_id FROM inventory
    WHERE film_id = p_film_id AND store_id = p_store_id AND inventory_in_stock(inventory_id)
$$;
CREATE FUNCTION get_customer_balance(p_customer_id integer, p_effective_date timestamptz DEFAULT now())
RETURNS numeric LANGUAGE sql AS $$
    SELECT coalesce(sum(amount), 0) FROM payment WHERE customer_id = p_customer_id AND payment_date <= p_effective_date
$$;
CREATE FUNCTION last_day(timestamptz) RETURNS date LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (date_trunc('month', $1) + interval '1 month - 1 day')::date
$$;
CREATE FUNCTION rewards_report(min_monthly_purchases integer, min_dollar_amount_purchased numeric)
RETURNS SETOF customer LANGUAGE sql AS $$
    SELECT c.* FROM customer c WHERE (SELECT count(*) FROM payment p WHERE p.customer_id = c.customer_id)
        >= min_monthly_purchases
$$;
CREATE FUNCTION film_list(category mpaa_rating DEFAULT NULL)
RETURNS TABLE (fid integer, title text, rating mpaa_rating, features text[]) LANGUAGE sql AS $$
    SELECT film_id, title, rating, special_features FROM film WHERE category IS NULL OR rating = category ORDER BY 1
$$;
CREATE FUNCTION film_count(r mpaa_rating) RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM film WHERE rating = r $$;
CREATE FUNCTION film_count(title_like text) RETURNS bigint LANGUAGE sql
    AS $$ SELECT count(*) FROM film WHERE title LIKE title_like $$;
CREATE FUNCTION search_films(q text) RETURNS SETOF film LANGUAGE sql STABLE
    AS $$ SELECT * FROM film WHERE fulltext @@ plainto_tsquery(q) $$;
CREATE FUNCTION total_of(VARIADIC amounts numeric[]) RETURNS numeric LANGUAGE sql
    AS $$ SELECT sum(a) FROM unnest(amounts) a $$;
CREATE FUNCTION release_years() RETURNS year[] LANGUAGE sql AS $$ SELECT array_agg(release_year) FROM film $$;
CREATE PROCEDURE rent_film(p_inventory_id integer, p_customer_id integer, INOUT rental_id integer DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rental (rental_date, inventory_id, customer_id) VALUES (now(), p_inventory_id, p_customer_id)
    RETURNING rental.rental_id INTO rental_id;
END $$;
CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_update := now();
    RETURN NEW;
END $$;
CREATE TRIGGER last_updated BEFORE UPDATE ON film FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE AGGREGATE group_concat(text) (SFUNC = textcat, STYPE = text);
