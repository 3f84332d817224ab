DROP TABLE IF EXISTS pending_invoice_facts;
