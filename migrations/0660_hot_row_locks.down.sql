ALTER TABLE customers RESET (fillfactor);
ALTER TABLE subscriptions RESET (fillfactor);
