// Validate a YAML stream of Kubernetes objects (a file argument, or stdin) against the OpenAPI
// schema of the Kubernetes release the npm `kubernetes-models` package was generated from.
// Prints one line per object and exits 1 when any object is invalid or of an unknown kind.
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';

const KINDS = {
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/PersistentVolumeClaim': 'kubernetes-models/v1/PersistentVolumeClaim',
  'v1/Pod': 'kubernetes-models/v1/Pod',
  'v1/Service': 'kubernetes-models/v1/Service',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'batch/v1/Job': 'kubernetes-models/batch/v1/Job',
};

const text = readFileSync(process.argv[2] || 0, 'utf8');
let bad = 0;
let n = 0;
for (const doc of yaml.loadAll(text)) {
  if (doc == null) continue;
  n++;
  const key = `${doc.apiVersion}/${doc.kind}`;
  const name = doc.metadata && doc.metadata.name;
  const path = KINDS[key];
  if (!path) {
    console.log(`${key} ${name}: unknown kind (the validator knows ${Object.keys(KINDS).join(', ')})`);
    bad++;
    continue;
  }
  const mod = await import(path);
  const Model = mod[doc.kind];
  try {
    new Model(doc).validate();
    console.log(`${key} ${name}: valid`);
  } catch (e) {
    console.log(`${key} ${name}: INVALID ${e.message}`);
    bad++;
  }
}
if (n === 0) {
  console.log('no objects');
  bad++;
}
process.exit(bad ? 1 : 0);
