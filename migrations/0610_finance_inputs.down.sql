DROP FUNCTION billingd_resolve_discounts(jsonb);
DROP TABLE invoice_line_amounts;
DROP TABLE discount_resolutions;
DROP TABLE customer_discount_versions;
ALTER TABLE subscription_versions DROP COLUMN automatic_tax;
ALTER TABLE subscriptions DROP COLUMN automatic_tax;
