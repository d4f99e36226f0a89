-- FHIR (issue #20): Patient.meta.lastUpdated and `_lastUpdated` search need to know when a patient row changed.

ALTER TABLE patients ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION patients_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER patients_updated_at BEFORE UPDATE ON patients
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION patients_touch_updated_at();
