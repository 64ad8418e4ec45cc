// Writes TUF repositories with tuf-js's metadata models (@tufjs/models:
// validation, canonical JSON, signing plumbing) and Node's crypto (keys and
// signatures), independently of flotilla, for flotilla's client to read.
// Each scenario is a directory laid out as serve.py serves it; scenarios.json
// says what each client must make of it.
//
// Usage: node tufjs_make_repo.mjs OUT_DIR [SCENARIO...]   (all scenarios when none is named)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalize } from '@tufjs/canonical-json';
import { Metadata, Root, Snapshot, Targets, Timestamp, Signature } from '@tufjs/models';

const EXPIRES = new Date(Date.now() + 30 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
const sha = (alg, data) => crypto.createHash(alg).update(data).digest('hex');
// flotilla's and python's percent-encoding of a whole file name (RFC 3986 unreserved kept).
const encodeName = (s) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function makeKey(keytype, scheme, pub, sign) {
  const json = { keytype, scheme, keyval: { public: pub } };
  return { keyid: sha('sha256', canonicalize(json)), json, sign };
}

function newKey(kind, bits = 2048) {
  if (kind === 'ed25519') {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
    return makeKey('ed25519', 'ed25519', raw.toString('hex'), (d) => crypto.sign(null, d, privateKey));
  }
  if (kind === 'ecdsa') {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    return makeKey('ecdsa', 'ecdsa-sha2-nistp256', pem, (d) => crypto.sign('sha256', d, privateKey));
  }
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  const pss = { key: privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
                saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST };
  return makeKey('rsa', 'rsassa-pss-sha256', pem, (d) => crypto.sign('sha256', d, pss));
}

class Repo {
  constructor(dir, { consistent = true, keys = {} } = {}) {
    this.dir = dir;
    this.consistent = consistent;
    this.top = {};
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
      this.top[role] = { signers: [keys[role] || newKey('ed25519')], threshold: 1 };
    }
    this.roles = new Map([['targets', { signers: this.top.targets.signers, targets: {} }]]);
    this.tamper = {};  // role -> function(documentJson)
    fs.mkdirSync(path.join(dir, 'metadata'), { recursive: true });
  }

  role(name) { return this.roles.get(name); }

  delegate(parent, spec, signers) {
    const p = this.role(parent);
    p.delegations ??= { keys: {}, roles: [] };
    for (const k of signers) p.delegations.keys[k.keyid] = k.json;
    p.delegations.roles.push({ ...spec, keyids: signers.map((k) => k.keyid),
                               threshold: spec.threshold ?? 1, terminating: spec.terminating ?? false });
    this.roles.set(spec.name, { signers, targets: {} });
  }

  delegateBins(parent, bitLength, prefix, signers) {
    const p = this.role(parent);
    p.delegations = { keys: {}, succinct_roles: { keyids: signers.map((k) => k.keyid), threshold: 1,
                                                  bit_length: bitLength, name_prefix: prefix } };
    for (const k of signers) p.delegations.keys[k.keyid] = k.json;
    const width = ((1 << bitLength) - 1).toString(16).length;
    for (let i = 0; i < 1 << bitLength; i++) {
      this.roles.set(`${prefix}-${i.toString(16).padStart(width, '0')}`, { signers, targets: {} });
    }
  }

  // TAP 15: the first bitLength bits of the SHA-256 of the target path.
  static binOf(name, bitLength, prefix) {
    const bin = crypto.createHash('sha256').update(name).digest().readUInt32BE(0) >>> (32 - bitLength);
    return `${prefix}-${bin.toString(16).padStart(((1 << bitLength) - 1).toString(16).length, '0')}`;
  }

  addTarget(role, name, content, algs = ['sha256']) {
    const hashes = Object.fromEntries(algs.map((a) => [a, sha(a, content)]));
    this.role(role).targets[name] = { length: Buffer.byteLength(content), hashes };
    const dir = path.join(this.dir, 'targets', path.posix.dirname(name));
    fs.mkdirSync(dir, { recursive: true });
    const base = path.posix.basename(name);
    const files = this.consistent ? Object.values(hashes).map((h) => `${h}.${base}`) : [base];
    for (const f of files) fs.writeFileSync(path.join(dir, f), content);
    return sha('sha256', content);
  }

  write(role, version, signed, signers) {
    const md = new Metadata(signed);
    for (const k of signers) {
      md.sign((data) => new Signature({ keyID: k.keyid, sig: k.sign(data).toString('hex') }));
    }
    const json = md.toJSON();
    if (this.tamper[role]) this.tamper[role](json);
    const bytes = JSON.stringify(json, null, 1);
    const names = role === 'timestamp' || !this.consistent ? [] : [`${version}.${role}.json`];
    for (const n of [...names, `${role}.json`]) {
      fs.writeFileSync(path.join(this.dir, 'metadata', encodeName(n)), bytes);
    }
    return bytes;
  }

  publish() {
    const common = { spec_version: '1.0.31', version: 1, expires: EXPIRES };
    const keys = {};
    const roles = {};
    for (const [name, r] of Object.entries(this.top)) {
      for (const k of r.signers) keys[k.keyid] = k.json;
      roles[name] = { keyids: r.signers.map((k) => k.keyid), threshold: r.threshold };
    }
    const root = Root.fromJSON({ _type: 'root', ...common, consistent_snapshot: this.consistent, keys, roles });
    const rootBytes = this.write('root', 1, root, this.top.root.signers);
    fs.writeFileSync(path.join(this.dir, 'metadata', '1.root.json'), rootBytes);
    const meta = {};
    for (const [name, r] of this.roles) {
      const json = { _type: 'targets', ...common, targets: r.targets };
      if (r.delegations) json.delegations = r.delegations;
      const bytes = this.write(name, 1, Targets.fromJSON(json), r.signers);
      meta[`${name}.json`] = { version: 1, length: Buffer.byteLength(bytes), hashes: { sha256: sha('sha256', bytes) } };
    }
    const snapshot = this.write('snapshot', 1, Snapshot.fromJSON({ _type: 'snapshot', ...common, meta }),
                                this.top.snapshot.signers);
    const snapMeta = { version: 1, length: Buffer.byteLength(snapshot), hashes: { sha256: sha('sha256', snapshot) } };
    this.write('timestamp', 1, Timestamp.fromJSON({ _type: 'timestamp', ...common, meta: { 'snapshot.json': snapMeta } }),
               this.top.timestamp.signers);
  }
}

// Expectations: per client, "ok", "notfound" or "error"; refresh "ok" or "error:<text flotilla prints>".
function schemesAndDelegations(dir) {
  const repo = new Repo(dir, { keys: { root: newKey('ecdsa'), targets: newKey('rsa'),
                                       snapshot: newKey('ed25519'), timestamp: newKey('ecdsa') } });
  const t = {};
  const ok = (sha256) => ({ flotilla: 'ok', tufjs: 'ok', sha256 });
  const missing = { flotilla: 'notfound', tufjs: 'notfound' };
  t['top.txt'] = ok(repo.addTarget('targets', 'top.txt', 'top level\n', ['sha256', 'sha512']));
  t['only512.txt'] = ok(repo.addTarget('targets', 'only512.txt', 'sha512 only\n', ['sha512']));
  repo.delegate('targets', { name: 'pair', paths: ['pair/*'], threshold: 2 }, [newKey('ecdsa'), newKey('rsa')]);
  t['pair/a.txt'] = ok(repo.addTarget('pair', 'pair/a.txt', 'two schemes, threshold 2\n'));
  repo.delegate('targets', { name: 'locked', paths: ['locked/*'], terminating: true }, [newKey('ed25519')]);
  repo.delegate('targets', { name: 'fallback', paths: ['locked/*', 'fallback/*'] }, [newKey('ecdsa')]);
  t['locked/in.txt'] = ok(repo.addTarget('locked', 'locked/in.txt', 'in the terminating role\n'));
  repo.addTarget('fallback', 'locked/out.txt', 'behind a terminating delegation\n');
  t['locked/out.txt'] = missing;
  t['fallback/f.txt'] = ok(repo.addTarget('fallback', 'fallback/f.txt', 'after it\n'));
  for (const [role, tag] of [['?', 'q'], ['#', 'h'], ['/', 's'], ['..', 'd'], ['a/../b', 'p']]) {
    repo.delegate('targets', { name: role, paths: [`odd/${tag}-*`] }, [newKey('ed25519')]);
    t[`odd/${tag}-1.txt`] = ok(repo.addTarget(role, `odd/${tag}-1.txt`, `signed by role ${role}\n`));
  }
  const prefix = sha('sha256', 'hashed/h.txt').slice(0, 1);
  repo.delegate('targets', { name: 'hashed', path_hash_prefixes: [prefix] }, [newKey('ed25519')]);
  t['hashed/h.txt'] = ok(repo.addTarget('hashed', 'hashed/h.txt', 'by hash prefix\n'));
  repo.delegate('targets', { name: 'apps', paths: ['apps/*'] }, [newKey('ed25519')]);
  repo.delegateBins('apps', 3, 'apps-bin', [newKey('ecdsa')]);
  const bin = Repo.binOf('apps/tool.txt', 3, 'apps-bin');
  t['apps/tool.txt'] = ok(repo.addTarget(bin, 'apps/tool.txt', `in hash bin ${bin}\n`));
  t['missing.txt'] = missing;
  repo.publish();
  return { refresh: { flotilla: 'ok', tufjs: 'ok' }, targets: t };
}

function duplicateSignature(dir) {
  const repo = new Repo(dir);
  const sha256 = repo.addTarget('targets', 'x.txt', 'x\n');
  repo.tamper.targets = (json) => json.signatures.push({ ...json.signatures[0] });
  repo.publish();
  return { refresh: { flotilla: 'error:two signatures carry key id', tufjs: 'error' },
           targets: { 'x.txt': { flotilla: 'error', tufjs: 'error', sha256 } } };
}

function smallRsaKey(dir) {
  const repo = new Repo(dir, { keys: { targets: newKey('rsa', 1024) } });
  const sha256 = repo.addTarget('targets', 'x.txt', 'x\n');
  repo.publish();
  // TUF: "All RSA keys MUST be at least 2048 bits"; tuf-js does not check.
  return { refresh: { flotilla: 'error:TUF requires at least 2048', tufjs: 'ok' },
           targets: { 'x.txt': { flotilla: 'error', tufjs: 'ok', sha256 } } };
}

function withoutConsistentSnapshots(dir) {
  const repo = new Repo(dir, { consistent: false });
  const t = {};
  t['plain.txt'] = { flotilla: 'ok', tufjs: 'ok', sha256: repo.addTarget('targets', 'plain.txt', 'plain\n') };
  repo.delegate('targets', { name: 'd', paths: ['d/*'] }, [newKey('ecdsa')]);
  t['d/x.txt'] = { flotilla: 'ok', tufjs: 'ok', sha256: repo.addTarget('d', 'd/x.txt', 'delegated\n') };
  repo.publish();
  return { refresh: { flotilla: 'ok', tufjs: 'ok' }, targets: t };
}

// Canonical JSON sorts object keys; tuf-js sorts UTF-16 code units, python's
// securesystemslib (and flotilla) code points. They differ for a key from
// U+E000..U+FFFF beside one above U+FFFF: the targets signature tuf-js makes
// does not verify for flotilla (nor for python-tuf).
function canonicalKeyOrder(dir) {
  const repo = new Repo(dir);
  repo.addTarget('targets', 'u/\u{E000}.txt', 'private use\n');
  const sha256 = repo.addTarget('targets', 'u/\u{1F600}.txt', 'emoji\n');
  repo.publish();
  return { refresh: { flotilla: 'error:targets: 0 valid signature(s)', tufjs: 'ok' },
           targets: { 'u/\u{1F600}.txt': { flotilla: 'error', tufjs: 'ok', sha256 } } };
}

// Path patterns: python's fnmatch (flotilla, python-tuf) lets '*' match a
// leading dot and has no braces; tuf-js's minimatch does the opposite.
function patterns(dir) {
  const repo = new Repo(dir);
  repo.delegate('targets', { name: 'dots', paths: ['dots/*'] }, [newKey('ed25519')]);
  repo.delegate('targets', { name: 'braces', paths: ['braces/{a,b}.txt'] }, [newKey('ed25519')]);
  const hidden = repo.addTarget('dots', 'dots/.hidden', 'hidden\n');
  const braced = repo.addTarget('braces', 'braces/a.txt', 'a\n');
  repo.publish();
  return { refresh: { flotilla: 'ok', tufjs: 'ok' },
           targets: { 'dots/.hidden': { flotilla: 'ok', tufjs: 'notfound', sha256: hidden },
                      'braces/a.txt': { flotilla: 'notfound', tufjs: 'ok', sha256: braced } } };
}

// A key listed under an id that is not the SHA-256 of its key object.
function keyIdNotTheKeysHash(dir) {
  const repo = new Repo(dir);
  const key = newKey('ed25519');
  repo.top.targets.signers = [{ ...key, keyid: 'f'.repeat(64) }];
  repo.roles.get('targets').signers = repo.top.targets.signers;
  const sha256 = repo.addTarget('targets', 'x.txt', 'x\n');
  repo.publish();
  return { refresh: { flotilla: 'error:is not the SHA-256 of its key', tufjs: 'ok' },
           targets: { 'x.txt': { flotilla: 'error', tufjs: 'ok', sha256 } } };
}

const [out, ...wanted] = process.argv.slice(2);
const scenarios = {};
for (const [name, make] of Object.entries({ 'schemes-and-delegations': schemesAndDelegations,
                                            'duplicate-signature': duplicateSignature,
                                            'rsa-1024': smallRsaKey,
                                            'not-consistent': withoutConsistentSnapshots,
                                            'canonical-key-order': canonicalKeyOrder,
                                            'patterns': patterns,
                                            'key-id-not-the-hash': keyIdNotTheKeysHash })) {
  if (wanted.length === 0 || wanted.includes(name)) scenarios[name] = make(path.join(out, name));
}
fs.writeFileSync(path.join(out, 'scenarios.json'), JSON.stringify(scenarios, null, 1));
