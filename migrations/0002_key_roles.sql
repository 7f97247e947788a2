-- A key's role: `user` (the model routes) or `admin` (the admin API too).
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
