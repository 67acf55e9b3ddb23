-- An audit/history schema in PL/pgSQL, in the style of the widely copied audit-trigger: jsonb row images,
-- network addresses, ranges of validity, regclass arguments, an event trigger, and history lookups.
CREATE TABLE logged_actions (
    event_id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    relid oid NOT NULL,
    action_tstamp timestamptz NOT NULL DEFAULT now(),
    client_addr inet,
    action char(1) NOT NULL CHECK (action IN ('I', 'D', 'U', 'T')),
    row_data jsonb,
    changed_fields jsonb,
    valid tstzrange
);
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL);
INSERT INTO accounts VALUES (1, 'ann', 10), (2, 'bob', 20);

CREATE FUNCTION if_modified_func() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO logged_actions (table_name, relid, client_addr, action, row_data, valid)
    VALUES (TG_TABLE_NAME, TG_RELID, inet_client_addr(), substring(TG_OP, 1, 1),
            to_jsonb(coalesce(NEW, OLD)), tstzrange(now(), NULL));
    RETURN NULL;
END $$;
CREATE FUNCTION audit_table(target_table regclass, audit_rows boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS audit_trigger_row ON %s', target_table);
    IF audit_rows THEN
        EXECUTE format('CREATE TRIGGER audit_trigger_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION if_modified_func()', target_table);
    END IF;
END $$;
CREATE FUNCTION history(p_table text, p_limit int DEFAULT 100) RETURNS SETOF logged_actions LANGUAGE sql STABLE AS $$
    SELECT * FROM logged_actions WHERE table_name = p_table ORDER BY event_id DESC LIMIT p_limit
$$;
CREATE FUNCTION last_change(p_table text, OUT event_id bigint, OUT action_tstamp timestamptz, OUT row_data jsonb)
LANGUAGE sql STABLE AS $$
    SELECT event_id, action_tstamp, row_data FROM logged_actions WHERE table_name = p_table
    ORDER BY event_id DESC LIMIT 1
$$;
CREATE FUNCTION changes_from(p_addr inet) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM logged_actions WHERE client_addr = p_addr $$;
CREATE FUNCTION valid_during(p_event bigint) RETURNS tstzrange LANGUAGE sql STABLE
    AS $$ SELECT valid FROM logged_actions WHERE event_id = p_event $$;
CREATE FUNCTION snapshot(p_id int) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT to_jsonb(a) INTO result FROM accounts a WHERE a.id = p_id;
    RETURN result;
END $$;
CREATE FUNCTION purge_before(p_when timestamptz) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM logged_actions WHERE action_tstamp < p_when;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
CREATE FUNCTION ddl_note() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'ddl'; END $$;
