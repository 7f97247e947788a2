-- Guardrails: what each call's guardrails decided (JSON, null when none ran), and each key's
-- guardrail settings (JSON: {"on": [...], "off": [...], "choose": bool}).
ALTER TABLE spend_logs ADD COLUMN guardrails TEXT;
ALTER TABLE api_keys ADD COLUMN guardrails TEXT NOT NULL DEFAULT '{}';
