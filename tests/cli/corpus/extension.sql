-- The script of an extension in the style of pg_partman: a configuration table, a composite type, and functions and a
-- procedure created in the schema CREATE EXTENSION ... SCHEMA names (@extschema@), all of them members of the
-- extension.
CREATE TABLE @extschema@.part_config (
    parent_table text PRIMARY KEY,
    control text NOT NULL,
    partition_interval text NOT NULL,
    premake int NOT NULL DEFAULT 4,
    automatic_maintenance text NOT NULL DEFAULT 'on'
);
CREATE TYPE @extschema@.check_parent_table AS (parent_table text, count bigint);

CREATE FUNCTION @extschema@.create_parent(p_parent_table text, p_control text, p_interval text, p_premake int DEFAULT 4)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO @extschema@.part_config (parent_table, control, partition_interval, premake)
    VALUES (p_parent_table, p_control, p_interval, p_premake);
    RETURN true;
END $$;
CREATE FUNCTION @extschema@.show_partitions(p_parent_table text, p_order text DEFAULT 'ASC')
RETURNS TABLE (partition_schemaname text, partition_tablename text) LANGUAGE sql STABLE AS $$
    SELECT 'partman', c.parent_table || '_p' || i FROM @extschema@.part_config c, generate_series(1, c.premake) i
    WHERE c.parent_table = p_parent_table
    ORDER BY CASE WHEN p_order = 'ASC' THEN i ELSE -i END
$$;
CREATE FUNCTION @extschema@.check_default(p_exact_count boolean DEFAULT true)
RETURNS SETOF @extschema@.check_parent_table LANGUAGE sql STABLE AS $$
    SELECT ROW(c.parent_table, 0::bigint)::@extschema@.check_parent_table FROM @extschema@.part_config c ORDER BY 1
$$;
CREATE FUNCTION @extschema@.partition_data_time(p_parent_table text, p_batch_count int DEFAULT 1,
                                                p_batch_interval interval DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$ SELECT 0::bigint $$;
CREATE FUNCTION @extschema@.dump_partitioned_table_definition(p_parent_table text,
                                                              p_ignore_template_table boolean DEFAULT false)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('SELECT %I.create_parent(%L, %L, %L, %s);', '@extschema@', c.parent_table, c.control,
                  c.partition_interval, c.premake)
    FROM @extschema@.part_config c WHERE c.parent_table = p_parent_table
$$;
CREATE FUNCTION @extschema@.apply_constraints(p_parent_table text, p_child_table text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN PERFORM 1 FROM @extschema@.part_config WHERE parent_table = p_parent_table; END $$;
CREATE PROCEDURE @extschema@.run_maintenance_proc(p_wait int DEFAULT 0, p_analyze boolean DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE @extschema@.part_config SET premake = premake WHERE automatic_maintenance = 'on';
    COMMIT;
END $$;
