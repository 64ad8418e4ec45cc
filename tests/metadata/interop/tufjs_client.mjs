// tuf-js's client (Updater) as a command for flotilla's cross-check: refreshes
// from METADATA_DIR/root.json against METADATA_URL, then looks up and
// downloads each TARGET. Prints one JSON object:
//   {"refresh": "ok" | "<error>", "targets": {NAME: {"result": "ok" | "notfound" | "error",
//                                                     "sha256": HEX, "error": TEXT}}}
// Usage: node tufjs_client.mjs METADATA_DIR METADATA_URL TARGETS_URL DOWNLOAD_DIR TARGET...
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Updater } from 'tuf-js';

const [metadataDir, metadataBaseUrl, targetBaseUrl, targetDir, ...names] = process.argv.slice(2);
fs.mkdirSync(targetDir, { recursive: true });
const updater = new Updater({ metadataDir, metadataBaseUrl, targetBaseUrl, targetDir,
                              config: { fetchRetry: 0 } });
const out = { refresh: 'ok', targets: {} };
try {
  await updater.refresh();
} catch (error) {
  out.refresh = String(error?.message ?? error);
}
for (const name of names) {
  if (out.refresh !== 'ok') {
    out.targets[name] = { result: 'error', error: 'refresh failed' };
    continue;
  }
  try {
    const info = await updater.getTargetInfo(name);
    if (!info) {
      out.targets[name] = { result: 'notfound' };
      continue;
    }
    const file = path.join(targetDir, encodeURIComponent(name));
    await updater.downloadTarget(info, file);
    const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    out.targets[name] = { result: 'ok', sha256 };
  } catch (error) {
    out.targets[name] = { result: 'error', error: String(error?.message ?? error) };
  }
}
console.log(JSON.stringify(out));
