-- An account's capacity: the most calls all its deployments may have in
-- dialing/connected at once (NULL: only each deployment's own capacity).
ALTER TABLE accounts ADD COLUMN capacity int CHECK (capacity BETWEEN 1 AND 1000000);
