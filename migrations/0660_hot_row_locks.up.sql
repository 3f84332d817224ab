-- Every event batch locks its customers' rows with an upsert that
-- rewrites them (qLockCustomers), and later versions rewrite a
-- subscription's row. At the default fillfactor (100) a full page leaves
-- no room for the new version beside the old, so about half of these
-- updates went to another page and inserted into every index (five on
-- customers). With a fifth of each page free the update stays on its
-- page (a heap-only tuple) and touches no index. New pages only: existing
-- ones fill as they are rewritten, no table rewrite at upgrade.
ALTER TABLE customers SET (fillfactor = 80);
ALTER TABLE subscriptions SET (fillfactor = 80);
