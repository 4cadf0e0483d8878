-- Several domains (issue 23): a session records the cookie domain it was minted for, so that its
-- cookie presented on a host of another configured domain is refused. '' is a session made before
-- this version, or with the one-domain shorthand: it belongs to the first configured domain.
ALTER TABLE sessions ADD COLUMN domain TEXT NOT NULL DEFAULT '';
