-- Questionnaire answers given in the patient app (/min/) beside those from the gateway's screen: such a response
-- has no gateway; it names the citizen who answered (the patient, or a relative) and, for a relative, the proxy
-- (fullmakt) it went through. Scored and alarmed like a gateway answer (rules_engine/questionnaires.py).
ALTER TABLE questionnaire_responses ALTER COLUMN gateway_id DROP NOT NULL;
ALTER TABLE questionnaire_responses ADD COLUMN answered_by_citizen uuid REFERENCES citizens (id);
ALTER TABLE questionnaire_responses ADD COLUMN proxy_id uuid REFERENCES proxies (id);
ALTER TABLE questionnaire_responses ADD CONSTRAINT questionnaire_responses_one_source
    CHECK ((gateway_id IS NULL) <> (answered_by_citizen IS NULL));
ALTER TABLE questionnaire_responses ADD CONSTRAINT questionnaire_responses_proxy_has_citizen
    CHECK (proxy_id IS NULL OR answered_by_citizen IS NOT NULL);
