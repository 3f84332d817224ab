ALTER TABLE customers DROP COLUMN IF EXISTS former_account_hmac;
