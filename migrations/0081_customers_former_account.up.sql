-- When Stripe deletes a customer, its account link goes (customer.deleted),
-- but an erasure of that account later must still find the customer to
-- remove its cus_/sub_ rows. Keep the former account as a keyed hash
-- (HMAC with the erasure key, like tombstones and the audit log), never the ID.
ALTER TABLE customers ADD COLUMN former_account_hmac bytea NULL;
CREATE INDEX customers_former_account_idx ON customers (former_account_hmac) WHERE former_account_hmac IS NOT NULL;
