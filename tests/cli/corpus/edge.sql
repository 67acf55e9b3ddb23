-- Names and types real schemas have that Python spells otherwise, in the style of PostgREST's test schema (test.assert(),
-- functions with parameters named "from" and "def", pages served by functions named welcome.html, fields named as
-- URLs) and pgMemento (restore_change, polymorphic with OUT parameters): keywords, dotted names, composite
-- attributes that are no identifiers, domains over tsvector (and over such a domain), a "char" column, jsonb
-- documents, and a procedure that commits its own work.
CREATE DOMAIN search_doc AS tsvector;
CREATE DOMAIN title_doc AS search_doc;
CREATE DOMAIN summary AS text NOT NULL;
CREATE TABLE articles (
    id int PRIMARY KEY,
    status "char" NOT NULL DEFAULT 'd',
    words search_doc,
    title title_doc,
    body jsonb
);
INSERT INTO articles VALUES (1, 'p', to_tsvector('simple', 'quick brown fox'), to_tsvector('simple', 'fox'),
                             '{"lang": "en", "tags": ["a", "b"]}'),
                            (2, 'd', NULL, NULL, NULL);
CREATE TYPE link AS ("http://postgrest.com/foo" text, "int" int, "from" int, "__kind" text, brief summary);
CREATE TABLE article_log (article int NOT NULL, at timestamptz NOT NULL DEFAULT now(), "from" int);
INSERT INTO article_log (article, "from") VALUES (1, 7), (1, 8);

CREATE FUNCTION "assert"("pass" boolean, message text DEFAULT 'assertion failed') RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT "pass" THEN
        RAISE EXCEPTION '%', message;
    END IF;
    RETURN "pass";
END $$;
CREATE FUNCTION "class"("from" int, "def" text) RETURNS text LANGUAGE sql AS $$ SELECT "def" || ':' || "from" $$;
CREATE FUNCTION "welcome.html"() RETURNS text LANGUAGE sql AS $$ SELECT '<h1>Welcome</h1>' $$;
CREATE FUNCTION "1st_article"() RETURNS SETOF articles LANGUAGE sql STABLE AS $$ SELECT * FROM articles ORDER BY id LIMIT 1 $$;
CREATE FUNCTION links(n int) RETURNS SETOF link LANGUAGE sql AS $$
    SELECT ROW('http://example.org/' || i, i * 10, i, 'k' || i, 'link ' || i)::link FROM generate_series(1, n) i
$$;
CREATE FUNCTION link_of("from" int) RETURNS link LANGUAGE sql
    AS $$ SELECT ROW('http://example.org/' || "from", NULL, "from", NULL, 'one')::link $$;
CREATE FUNCTION echo_link(l link) RETURNS link LANGUAGE sql AS $$ SELECT l $$;
CREATE FUNCTION link_page(n int, OUT "in" link[], OUT total int) LANGUAGE sql
    AS $$ SELECT array_agg(l ORDER BY l."from"), count(*)::int FROM links(n) l $$;
CREATE FUNCTION log_of(article int) RETURNS TABLE ("from" int, "at" timestamptz) LANGUAGE sql STABLE AS $$
    SELECT l."from", l.at FROM article_log l WHERE l.article = log_of.article ORDER BY l."from"
$$;
CREATE FUNCTION restore_change(during int, "original" anyelement, OUT changed anyelement, OUT "from" int)
LANGUAGE sql AS $$ SELECT "original", during $$;
CREATE FUNCTION restore_changes(n int, "value" anyelement) RETURNS TABLE (i int, "of" anyelement)
LANGUAGE sql AS $$ SELECT g, restore_changes."value" FROM generate_series(1, n) g $$;
CREATE FUNCTION restore_array(items anyarray, OUT first anyelement, OUT items_out anyarray)
LANGUAGE sql AS $$ SELECT items[1], items $$;
CREATE FUNCTION article_words(id int) RETURNS search_doc LANGUAGE sql STABLE
    AS $$ SELECT a.words FROM articles a WHERE a.id = article_words.id $$;
CREATE FUNCTION titled(t title_doc) RETURNS SETOF articles LANGUAGE sql STABLE
    AS $$ SELECT * FROM articles a WHERE a.title @@ t::text::tsquery ORDER BY a.id $$;
CREATE FUNCTION status_of(id int) RETURNS "char" LANGUAGE sql STABLE
    AS $$ SELECT a.status FROM articles a WHERE a.id = status_of.id $$;
CREATE FUNCTION with_status(s "char") RETURNS SETOF articles LANGUAGE sql STABLE
    AS $$ SELECT * FROM articles a WHERE a.status = s ORDER BY a.id $$;
CREATE FUNCTION article_body(id int) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT a.body FROM articles a WHERE a.id = article_body.id $$;
CREATE FUNCTION bodies() RETURNS SETOF jsonb LANGUAGE sql STABLE AS $$ SELECT a.body FROM articles a ORDER BY a.id $$;
CREATE PROCEDURE archive(before int) LANGUAGE plpgsql AS $$
BEGIN
    -- one transaction a batch; a ROLLBACK in this comment, or 'COMMIT' in a string, is no transaction control
    DELETE FROM article_log WHERE article < before;
    COMMIT;
END $$;
CREATE PROCEDURE touch_log(article int) LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'no COMMIT here: %', 'nor a ROLLBACK';  -- COMMIT
    UPDATE article_log l SET at = now() WHERE l.article = touch_log.article;
END $$;
