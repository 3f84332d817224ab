DROP TABLE revenue_facts_pending;
