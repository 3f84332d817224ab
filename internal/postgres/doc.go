// Package postgres is billingd's only SQL code: it implements the billing
// interfaces on PostgreSQL. Driver errors stop here and become billing
// errors (errors.go).
//
// The webhook event path is the files named event*.go, in reading order.
// One event, from the handler's call to its commit:
//
//   - event1_apply.go: (*Store).ApplyEvent checks the event (checkEvent)
//     and hands it to the group applier; applyEvent dispatches the events
//     that are not a subscription's by the kind of object they carry.
//   - event2_group.go: the event waits in a bounded queue (admission
//     control: refused at once when full or when its deadline cannot be
//     met) until a batcher takes up to EVENT_BATCH_MAX waiting events into
//     one transaction; a failed batch is retried one event per transaction,
//     so one poison event fails alone.
//   - event3_batch.go: applyBatch records the event IDs (duplicates stop
//     here), takes the subjects' tombstone locks and reads the tombstones,
//     then locks every customer row the batch touches in one statement,
//     sorted, so two replicas' batches cannot deadlock.
//   - event4_subscriptions.go: subscription versions go into the history;
//     current state moves only to a newer version key (billing/order.go, the
//     same rule as the SQL guard: version_order_test.go drives both with one
//     table); event4_subscription_doc.go is the store's own JSON of a
//     subscription, so the domain's types are not a column list.
//   - event5_customers.go and event6_invoices.go: customer, checkout and
//     invoice events, on the customer rows the batch locked (plain
//     customer events of different customers together: a backfill's
//     customer pages are all plain); testclocks.go:
//     test clock events (no customer row) and the clock of a customer.
//   - event7_ledger.go: the revenue ledger of every customer whose history
//     changed is re-derived from the earliest changed version, with its
//     other inputs (customer discounts, invoice tax shares, resolved
//     discount IDs: ledger_inputs.go, where customer and invoice events
//     ask for their customers' ledgers too). A customer first seen in the
//     batch has no inputs but those the batch wrote, so its first
//     subscription reads none: the common event costs no extra statement.
//     Its segment, cohort and trial facts are only queued
//     (revenue_facts_pending), for the deriver to derive after the commit
//     (revenue_facts_deriver.go).
//   - event8_tombstones.go: lock keys and hashes for erased subjects.
//   - event9_prepared.go: the one list of statements prepared per pool
//     when the pool's connections are sessions (DB_PREPARED_STATEMENTS;
//     never behind a transaction-mode pooler, pool.go), and ptx, the
//     transaction that carries the store, the erasure key ring and what the
//     batch learns (the accounts to tell the entitlement cache).
//   - event9_session_plans.go: behind a transaction-mode pooler, the same
//     statements prepared with SQL PREPARE on the server connection each
//     transaction holds and run with EXECUTE.
//
// The batch commits; only then does each waiting caller get its outcome
// (ack after commit), and the Store tells its cache which accounts changed
// (notify.go) before any of them is answered, so a replica reads its own
// writes.
package postgres
