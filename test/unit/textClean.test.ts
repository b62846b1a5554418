import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanText, fixEncoding, fixText, ftfyUnescapeHtml, htmlUnescape, isBad } from '../../src/core/textClean';

/** Answers of ftfy 6.3.1 / Python's html.unescape / OpenAI's cleaning (see fixtures/clip-reference/README.md). */
interface FtfyCase {
  text: string;
  fix: string;
  unescape: string;
  clean: string;
  bad: boolean;
}
const CASES: FtfyCase[] = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/clip-reference/tokenizer/ftfy-cases.json'), 'utf8'),
).cases;

/** Compares every case and reports the first few differences, so a failure says which strings and how. */
function checkAll(field: keyof Omit<FtfyCase, 'text'>, run: (text: string) => string | boolean): void {
  const wrong = CASES.filter((c) => run(c.text) !== c[field]);
  assert.deepEqual(
    wrong.slice(0, 5).map((c) => ({ text: c.text, want: c[field], got: run(c.text) })),
    [],
    `${wrong.length} of ${CASES.length} differ`,
  );
}

test('the fixture covers what it claims (mojibake, entities, controls)', () => {
  assert.ok(CASES.length > 900);
  assert.ok(CASES.filter((c) => c.fix !== c.text).length > 500, 'most cases are changed by ftfy');
  assert.ok(CASES.filter((c) => c.bad).length > 300, 'many cases look like mojibake');
  assert.ok(CASES.filter((c) => c.unescape !== c.text).length > 50, 'many cases have HTML references');
});

test('fixText equals ftfy 6.3.1 fix_text on every reference case', () => {
  checkAll('fix', fixText);
});

test('isBad equals ftfy.badness.is_bad on every reference case', () => {
  checkAll('bad', isBad);
});

test('htmlUnescape equals Python html.unescape on every reference case', () => {
  checkAll('unescape', htmlUnescape);
});

test("cleanText equals OpenAI's whitespace_clean(basic_clean(text)) on every reference case", () => {
  checkAll('clean', cleanText);
});

test('mojibake of UTF-8 read as cp1252 / latin-1 / cp1251 is repaired, also when layered or embedded', () => {
  assert.equal(fixText('cafÃ©'), 'café');
  assert.equal(fixText('ÐŸÑ€Ð¸Ð²ÐµÑ‚'), 'Привет');
  assert.equal(fixText('ðŸ˜€'), '😀');
  assert.equal(fixText('The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.'), "The Mona Lisa doesn't have eyebrows.");
  assert.equal(fixText('ok café and cafÃ© too'), 'ok café and café too'); // decode_inconsistent_utf8
  assert.equal(fixText('voilÃ  le travail'), 'voilà le travail'); // restore_byte_a0
  assert.equal(fixText('Ã la mode'), 'à la mode'); // restore_byte_a0's "à" word rule
  assert.equal(fixText('â€œ like this â€\ufffd'), '" like this \ufffd'); // replace_lossy_sequences
  assert.equal(fixText('\x93curly\x94'), '"curly"'); // C1 controls read as windows-1252
  assert.equal(fixText('a\x85b'), 'a…b');
  assert.equal(fixEncoding('cafÃ©'), 'café');
  // Text that is fine, or ambiguous, is left alone.
  for (const ok of ['café', 'naïve résumé', 'Straße', '日本語', 'Ã', '¯\\_(ツ)_/¯', 'í ½í¸€']) assert.equal(fixText(ok), ok);
});

test("ftfy's character fixes: quotes, ligatures, widths, line breaks, controls, escapes, surrogates, NFC", () => {
  assert.equal(fixText('don’t “stop”'), 'don\'t "stop"');
  assert.equal(fixText('ﬁsh ﬂow'), 'fish flow');
  assert.equal(fixText('ＣＬＩＰ\u3000ｆｕｌｌ'), 'CLIP full');
  assert.equal(fixText('a\r\nb\rc\u2028d'), 'a\nb\nc\nd');
  assert.equal(fixText('\x1b[31mred\x1b[0m'), 'red');
  assert.equal(fixText('\ufeffbom\x00'), 'bom');
  assert.equal(fixText('zero\u200bwidth'), 'zero\u200bwidth'); // not one of ftfy's control characters
  assert.equal(fixText('lone\ud800x'), 'lone\ufffdx');
  assert.equal(fixText('e\u0301'), '\u00e9');
  assert.equal(fixText(''), '');
});

test("ftfy's HTML unescaping: only ';'-terminated references, all-caps ones too, and not in segments with '<'", () => {
  assert.equal(fixText('P&EACUTE;REZ'), 'PÉREZ');
  assert.equal(fixText('&amp;amp;'), '&'); // ftfy repeats until nothing changes
  assert.equal(fixText('&copy 2020'), '&copy 2020');
  assert.equal(fixText('&notit;'), '&notit;');
  assert.equal(fixText('<b>&amp;</b>'), '<b>&amp;</b>');
  // Per line: once a line has '<', this and later lines keep their entities.
  assert.equal(fixText('a&amp;b\n<c>&amp;d'), 'a&b\n<c>&amp;d');
  assert.equal(fixText('<c>&amp;d\na&amp;b'), '<c>&amp;d\na&amp;b');
  assert.equal(ftfyUnescapeHtml('&#150; &#12a;'), '– &#12a;');
});

test('htmlUnescape follows HTML5 as Python does (legacy names, longest prefix, invalid numbers)', () => {
  assert.equal(htmlUnescape('&copy 2020 &notit; &amp;amp;'), '© 2020 ¬it; &amp;');
  assert.equal(htmlUnescape('&EACUTE; &eacute &Eacute;'), '&EACUTE; é É');
  assert.equal(htmlUnescape('&#150;&#x41;&#0;&#xD800;&#x110000;&#1;'), '–A\ufffd\ufffd\ufffd');
  assert.equal(htmlUnescape('&NotGreaterFullEqual; &#x1F600;'), '\u2267\u0338 😀');
  assert.equal(htmlUnescape('no references & such'), 'no references & such');
});

test('cleanText: ftfy, html.unescape twice, whitespace collapsed and stripped, case kept', () => {
  assert.equal(cleanText('  A  PHOTO\t\nof\u00a0a\u2003cat  '), 'A PHOTO of a cat');
  assert.equal(cleanText('<b>&amp;amp;</b>'), '<b>&</b>');
  assert.equal(cleanText('cats &amp; dogs'), 'cats & dogs');
  assert.equal(cleanText('   \t\n  '), '');
  assert.equal(cleanText('cafÃ©\r\n“quoted”'), 'café "quoted"');
  assert.equal(cleanText('zero\u200bwidth\ufeff'), 'zero\u200bwidth');
});
