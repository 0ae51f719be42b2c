// A citizen's app and a dispatcher's desk, written against the TypeScript clients that @hey-api/openapi-ts
// generates from the services' public documents: every HTTP call below is a generated SDK function.
//
// tests/e2e/test_generated_clients.py generates the clients into a scratch folder (./intake from
// report-intake's /openapi.json, ./bridge from dispatch-bridge's), copies this file beside them, type-checks it
// with `tsc --noEmit --strict` and runs it with tsx against the running suite. It reads its settings from the
// environment (BM_FLOW_*, below) and prints one JSON object: every round trip (operation and HTTP status) and
// what the test asserts on.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import * as bridge from './bridge/index';
import { createClient as createBridgeClient } from './bridge/client/index';
import * as intake from './intake/index';
import { createClient as createIntakeClient } from './intake/client/index';

function setting(name: string): string {
  const value = process.env[`BM_FLOW_${name}`];
  if (value === undefined || value === '') {
    throw new Error(`BM_FLOW_${name} is not set`);
  }
  return value;
}

type Place = { lat: number; lon: number };
type Vector = { challenge: string; difficulty_bits: number; solution: string };

const run = setting('RUN'); // tells this run's reports and keys apart from the other client's
const places = JSON.parse(setting('PLACES')) as [Place, Place];
const vector = JSON.parse(setting('POW_VECTOR')) as Vector;
const photo = readFileSync(setting('PHOTO'));
const question = `Welke kant liep de verdachte op? (${run})`;
const answerText = `Richting het station (${run})`;

const app = createIntakeClient({ baseUrl: setting('INTAKE_URL') });
const desk = createBridgeClient({ baseUrl: setting('BRIDGE_URL') });

// Every round trip, in order: the test checks which operations ran and what they answered.
const calls: { operation: string; status: number }[] = [];

type Result<T> = { data?: T; error?: unknown; response?: Response };

async function call<T>(operation: string, expected: number, pending: Promise<Result<T>>): Promise<T> {
  const result = await pending;
  const status = result.response?.status ?? 0;
  calls.push({ operation, status });
  if (status !== expected || result.data === undefined) {
    throw new Error(`${operation}: expected ${expected}, got ${status}: ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

// The registration's proof of work, as the document describes it: count until SHA-256('<challenge>:<n>') starts
// with `bits` zero bits.
function leadingZeroBits(digest: Buffer): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

function solves(challenge: string, solution: string, bits: number): boolean {
  return leadingZeroBits(createHash('sha256').update(`${challenge}:${solution}`).digest()) >= bits;
}

function solve(challenge: string, bits: number): string {
  let counter = 0;
  while (!solves(challenge, String(counter), bits)) {
    counter += 1;
  }
  return String(counter);
}

// A report as the `report` part carries it: JSON text (the document says so, but gives no type for it).
function report(place: Place, description: string): string {
  return JSON.stringify({
    category: 'burglary',
    description,
    location: place,
    observed_at: new Date().toISOString(),
    in_progress: false,
  });
}

async function main(): Promise<void> {
  // The solver first meets the document's own test vector.
  const vectorSolved = solve(vector.challenge, vector.difficulty_bits);

  // The citizen registers the app.
  const challenge = await call('intake.newChallenge', 201, intake.newChallenge({ client: app }));
  const solution = solve(challenge.challenge, challenge.difficulty_bits);
  const installation = await call(
    'intake.registerInstallation',
    201,
    intake.registerInstallation({ client: app, body: { challenge: challenge.challenge, solution } }),
  );
  const credential = installation.credential;

  // A report with a photo, and the same request again (a retry after a lost answer).
  const sendReport = (json: string, key: string, photos: Blob[]) =>
    call(
      'intake.createReport',
      202,
      intake.createReport({
        client: app,
        auth: () => credential,
        headers: { 'Idempotency-Key': key },
        body: { report: json, photos },
      }),
    );
  const description = `Twee mannen bij de achterdeur (${run})`;
  const key = `ts-client-report-${run}`;
  const photoBlob = new Blob([photo], { type: 'image/jpeg' });
  const first = report(places[0], description);
  const created = await sendReport(first, key, [photoBlob]);
  const retried = await sendReport(first, key, [photoBlob]); // the same request again: its answer was lost

  // The citizen's view of a report: the report's own token, and the app's credential that made it.
  const citizen = (token: string) => (auth: { type: string }) => (auth.type === 'http' ? token : credential);
  const view = (report: intake.ReportCreated) =>
    call(
      'intake.getReport',
      200,
      intake.getReport({ client: app, auth: citizen(report.access_token), path: { report_id: report.id } }),
    );
  const forwarded = await until('the report to be forwarded', async () => {
    const seen = await view(created);
    return seen.timeline.some((item) => item.event === 'forwarded') ? seen : undefined;
  });

  // The dispatcher logs in, finds the incident, opens the report, looks at its photo, asks a question.
  const login = await call(
    'bridge.requestToken',
    200,
    bridge.requestToken({ client: desk, body: { username: setting('USERNAME'), password: setting('PASSWORD') } }),
  );
  const dispatcher = () => login.access_token;
  const incidentOf = (reportId: string) =>
    until(`an incident with report ${reportId}`, async () => {
      const incidents = await call(
        'bridge.listIncidents',
        200,
        bridge.listIncidents({ client: desk, auth: dispatcher }),
      );
      return incidents.find((incident) => incident.reports.some((item) => item.report_id === reportId));
    });
  const incident = await incidentOf(created.id);
  const opened = await call(
    'bridge.getReport',
    200,
    bridge.getReport({ client: desk, auth: dispatcher, path: { report_id: created.id } }),
  );
  const photoSeen = await call(
    'bridge.getReportPhoto',
    200,
    bridge.getReportPhoto({
      client: desk,
      auth: dispatcher,
      path: { report_id: created.id, photo_id: opened.photos[0].photo_id },
    }),
  );
  const photoBytes = new Uint8Array(await photoSeen.arrayBuffer());
  const asked = await call(
    'bridge.askQuestion',
    201,
    bridge.askQuestion({ client: desk, auth: dispatcher, path: { report_id: created.id }, body: { text: question } }),
  );

  // The citizen sees the question and answers it; the dispatcher sees the answer.
  const received = await until('the question to reach the citizen', async () => {
    const messages = await call(
      'intake.listMessages',
      200,
      intake.listMessages({ client: app, auth: citizen(created.access_token), path: { report_id: created.id } }),
    );
    return messages.find((message) => message.direction === 'to_citizen' && message.text === question);
  });
  const answered = await call(
    'intake.sendMessage',
    201,
    intake.sendMessage({
      client: app,
      auth: citizen(created.access_token),
      path: { report_id: created.id },
      headers: { 'Idempotency-Key': `ts-client-answer-${run}` },
      body: { text: answerText, in_reply_to: received.id },
    }),
  );
  const answerSeen = await until('the answer to reach the dispatcher', async () => {
    const detail = await call(
      'bridge.getReport',
      200,
      bridge.getReport({ client: desk, auth: dispatcher, path: { report_id: created.id } }),
    );
    return detail.messages.find((message) => message.direction === 'from_citizen' && message.text === answerText);
  });

  // A second report of the same event from elsewhere: the dispatcher merges its incident into the first.
  const secondReport = report(places[1], `Twee mannen rennen weg (${run})`);
  const second = await sendReport(secondReport, `ts-client-report-2-${run}`, []);
  const secondIncident = await incidentOf(second.id);
  const merged = await call(
    'bridge.mergeIncidents',
    200,
    bridge.mergeIncidents({
      client: desk,
      auth: dispatcher,
      path: { incident_id: incident.incident_id },
      body: { incident_ids: [secondIncident.incident_id] },
    }),
  );

  // The citizen withdraws the first report.
  const withdrawn = await call(
    'intake.withdrawReport',
    200,
    intake.withdrawReport({ client: app, auth: citizen(created.access_token), path: { report_id: created.id } }),
  );
  const final = await view(created);

  process.stdout.write(
    JSON.stringify({
      calls,
      vector_solved: vectorSolved,
      installation_id: installation.installation_id,
      created,
      retried,
      forwarded_timeline: forwarded.timeline.map((item) => item.event),
      forwarded_status: forwarded.status,
      incident_id: incident.incident_id,
      incident_reports: incident.reports.map((item) => item.report_id),
      opened: { report_id: opened.report_id, description: opened.description, photos: opened.photos.length },
      photo: {
        size: photoBytes.length,
        head: Array.from(photoBytes.slice(0, 3)),
        camera_named: Buffer.from(photoBytes).includes('Pixel 8'),
      },
      asked,
      received,
      answered,
      answer_seen: answerSeen,
      second_id: second.id,
      second_incident_id: secondIncident.incident_id,
      merged: {
        incident_id: merged.incident_id,
        merged_from: merged.merged_from,
        reports: merged.reports.map((item) => item.report_id),
      },
      withdrawn,
      final: { status: final.status, timeline: final.timeline.map((item) => item.event) },
    }) + '\n',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.stdout.write(JSON.stringify({ calls, error: String(error) }) + '\n');
  process.exit(1);
});
