/** Quick fixes on .clip-lens.json keys ("did you mean topK?" -> Rename to 'topK'), driven through the fake 'vscode'. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { configDiagnostics } from '../../src/extension/diagnosticsModel';
import { createFakeVscode, FakeDocument, installFakeVscode } from './extension-fakeVscode';

let fake: ReturnType<typeof createFakeVscode>;
let uninstall: () => void;
before(() => {
  fake = createFakeVscode(os.tmpdir());
  uninstall = installFakeVscode(fake.vscode);
});
after(() => uninstall());

test('a misspelt config key gets "Rename to …" that replaces only the quoted key', () => {
  const { renameKeyFix } = require('../../src/extension/codeActions') as typeof import('../../src/extension/codeActions');
  const V = fake.vscode;
  const text = '{\n  "topk": 3,\n  "gate": { "minTop1accuracy": 0.5 }\n}\n';
  const doc = new FakeDocument(V.Uri.file('/d/.clip-lens.json'), text);
  const diags = configDiagnostics('/d/.clip-lens.json', text);
  assert.equal(diags.length, 2);
  const results: string[] = [];
  for (const p of diags) {
    const d = new V.Diagnostic(new V.Range(p.range.start.line, p.range.start.character, p.range.end.line, p.range.end.character), p.message);
    const action = renameKeyFix(doc as never, d as never)!;
    assert.ok(action, p.message);
    const op = (action.edit as unknown as InstanceType<typeof V.WorkspaceEdit>).ops[0] as { range: InstanceType<typeof V.Range>; text: string };
    const a = doc.offsetAt(op.range.start);
    const b = doc.offsetAt(op.range.end);
    results.push(action.title);
    const fixed = text.slice(0, a) + op.text + text.slice(b);
    assert.ok(JSON.parse(fixed), 'still valid JSON');
    doc.setText(text);
    if (p.message.startsWith('topk')) assert.equal(fixed, text.replace('"topk"', '"topK"'));
    else assert.equal(fixed, text.replace('"minTop1accuracy"', '"minTop1Accuracy"'));
  }
  assert.deepEqual(results, ["Rename to 'topK'", "Rename to 'minTop1Accuracy'"]);
  // No guess, no fix.
  const none = new V.Diagnostic(new V.Range(1, 2, 1, 8), 'topk: unknown key');
  assert.equal(renameKeyFix(doc as never, none as never), undefined);
});
