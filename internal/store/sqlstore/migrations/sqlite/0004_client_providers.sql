-- Which providers a client accepts (empty: all), as a JSON list.
ALTER TABLE clients ADD COLUMN providers TEXT NOT NULL DEFAULT 'null';
