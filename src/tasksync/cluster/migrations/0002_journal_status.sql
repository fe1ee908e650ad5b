-- As SQLite's schema 2: journal rows by status, to find the writes whose answer was lost
-- without a full scan.
CREATE INDEX journal_status ON journal (status);
