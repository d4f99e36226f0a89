-- Tell caches (ingest's gateway registry) when a gateway is added, re-assigned, enabled or disabled.
CREATE FUNCTION varde_notify_gateway_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('varde_gateways', COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END;
$$;

CREATE TRIGGER gateways_changed AFTER INSERT OR DELETE OR UPDATE OF patient_id, enabled ON gateways
    FOR EACH ROW EXECUTE FUNCTION varde_notify_gateway_change();
