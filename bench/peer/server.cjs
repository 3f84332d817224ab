// The peer for bench/: @supabase/stripe-sync-engine behind a bare node:http
// server, so billingd's ingest rate can be compared with it on the same
// PostgreSQL and the same signed events. Usage: node server.cjs DB_URL SECRET PORT
const http = require('node:http');
const { StripeSync, runMigrations } = require('@supabase/stripe-sync-engine');

const [, , databaseUrl, secret, port] = process.argv;

(async () => {
  await runMigrations({ databaseUrl, schema: 'stripe' });
  const sync = new StripeSync({
    poolConfig: { connectionString: databaseUrl, max: 32 },
    schema: 'stripe',
    stripeSecretKey: 'sk_test_bench_not_used',
    stripeWebhookSecret: secret,
    backfillRelatedEntities: false,
  });
  http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      try {
        await sync.processWebhook(Buffer.concat(chunks), req.headers['stripe-signature']);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e && e.message));
      }
    });
  }).listen(Number(port), '127.0.0.1', () => console.log('ready'));
})().catch((e) => { console.error(e); process.exit(1); });
