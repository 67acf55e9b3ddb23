CREATE TABLE users (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text,
    created timestamptz NOT NULL
);

INSERT INTO users
SELECT i,
       'user ' || i,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'user' || i || '@example.org' END,
       '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
FROM generate_series(1, 100000) AS i;

CREATE FUNCTION get_user(id int) RETURNS SETOF users LANGUAGE sql STABLE
AS $$ SELECT * FROM users u WHERE u.id = get_user.id $$;

CREATE FUNCTION list_users(n int) RETURNS SETOF users LANGUAGE sql STABLE
AS $$ SELECT * FROM users ORDER BY id LIMIT n $$;

-- Rows made on the fly, for streams longer than the table.
CREATE FUNCTION series_users(n int) RETURNS SETOF users LANGUAGE sql STABLE
AS $$ SELECT i, 'user ' || i, NULL::text, '2024-01-01 00:00:00+00'::timestamptz FROM generate_series(1, n) AS i $$;

-- Documents: a jsonb column that becomes a dataclass.
CREATE FUNCTION list_docs(n int) RETURNS TABLE (id int, body jsonb) LANGUAGE sql STABLE
AS $$ SELECT i, jsonb_build_object('title', 'doc ' || i, 'tags', jsonb_build_array('a', 'b'), 'score', i)
      FROM generate_series(1, n) AS i $$;
