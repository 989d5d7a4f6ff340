import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { resp, RespParser, type RespRequest } from '../src/codec/resp.js';

const encode = (args: (string | Buffer)[]): Buffer => resp.array(args.map((a) => resp.bulk(a)));

function drain(parser: RespParser): RespRequest[] {
  const out: RespRequest[] = [];
  for (let r = parser.next(); r !== null; r = parser.next()) {
    out.push(r);
    if (r.kind === 'error') break;
  }
  return out;
}

const texts = (requests: RespRequest[]): string[][] => requests.map((r) => (r.kind === 'command' ? r.args.map((a) => a.toString('latin1')) : [`!${r.message}`]));

describe('the RESP request parser', () => {
  it('parses a pipeline of commands however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 20 }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(200), { maxLength: 6 }),
        (commands, cuts) => {
          const bytes = Buffer.concat(commands.map((c) => encode(c.map((a) => Buffer.from(a)))));
          const parser = new RespParser();
          const got: RespRequest[] = [];
          let from = 0;
          for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
            parser.push(bytes.subarray(from, Math.max(from, cut)));
            from = Math.max(from, cut);
            got.push(...drain(parser));
          }
          assert.deepEqual(texts(got), commands.map((c) => c.map((a) => Buffer.from(a).toString('latin1'))));
        },
      ),
    );
  });

  it('parses inline commands with quotes and escapes', () => {
    const parser = new RespParser();
    parser.push(Buffer.from('SET k "a b\\x41\\n" \r\nPING\n\r\nGET \'x y\'\n'));
    assert.deepEqual(texts(drain(parser)), [['SET', 'k', 'a bA\n'], ['PING'], ['GET', 'x y']]);
    // Split mid-command, after one already parsed from the same bytes; then a multibulk one.
    const split = new RespParser();
    split.push(Buffer.from('PING\r\nGET a'));
    assert.deepEqual(texts(drain(split)), [['PING']]);
    split.push(Buffer.from('b\r\n*1\r\n$4\r\nPI'));
    assert.deepEqual(texts(drain(split)), [['GET', 'ab']]);
    split.push(Buffer.from('NG\r\n'));
    assert.deepEqual(texts(drain(split)), [['PING']]);
  });

  it('answers malformed input with Redis-style protocol errors', () => {
    const cases: [string, RegExp][] = [
      ['*abc\r\n', /invalid multibulk length/],
      ['*1\r\n+PING\r\n', /expected '\$', got '\+'/],
      ['*1\r\n$-5\r\n', /invalid bulk length/],
      ['*1\r\n$3\r\nabcXY', /not terminated by CRLF/],
      ['*\r\n', /invalid multibulk length/],
      ['*1-\r\n', /invalid multibulk length/],
      ['*--1\r\n', /invalid multibulk length/],
      ['*1234567890123456789\r\n', /invalid multibulk length/],
      [`*${'1'.repeat(40)}`, /too big mbulk count string/],
      ['*1\r\n$\r\n', /invalid bulk length/],
      ['*1\r\n$1x\r\n', /invalid bulk length/],
      ['*1\r\n$3\rX\r\n', /invalid bulk length/],
      [`*1\r\n$${'9'.repeat(40)}`, /too big bulk count string/],
      ['SET "unbalanced\r\n', /unbalanced quotes/],
    ];
    for (const [input, message] of cases) {
      const parser = new RespParser();
      parser.push(Buffer.from(input));
      const [result] = drain(parser);
      assert.ok(result?.kind === 'error', `${JSON.stringify(input)} should fail`);
      assert.match(result.message, /^ERR Protocol error: /);
      assert.match(result.message, message);
      assert.equal(parser.next()?.kind, 'error', 'the parser stays failed');
    }
  });

  it('skips an empty or negative multibulk count, as Redis does', () => {
    const parser = new RespParser();
    parser.push(Buffer.from('*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n'));
    const results = drain(parser);
    assert.deepEqual(
      results.map((r) => (r.kind === 'command' ? r.args.map(String) : r.message)),
      [['PING']],
    );
  });

  it('refuses a bulk length or argument count over the limit before allocating', () => {
    const parser = new RespParser({ bulkBytesMax: 100, argumentsMax: 10, inlineBytesMax: 50 });
    parser.push(Buffer.from('*1\r\n$101\r\n'));
    assert.match((parser.next() as { message: string }).message, /invalid bulk length/);
    const many = new RespParser({ bulkBytesMax: 100, argumentsMax: 10, inlineBytesMax: 50 });
    many.push(Buffer.from('*11\r\n'));
    assert.match((many.next() as { message: string }).message, /invalid multibulk length/);
    const inline = new RespParser({ bulkBytesMax: 100, argumentsMax: 10, inlineBytesMax: 50 });
    inline.push(Buffer.alloc(60, 'a'));
    assert.match((inline.next() as { message: string }).message, /too big inline request/);
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const parser = new RespParser({ bulkBytesMax: 1000, argumentsMax: 100, inlineBytesMax: 1000 });
        parser.push(Buffer.from(bytes));
        drain(parser);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('RESP reply encoders', () => {
  it('encode RESP2 and RESP3 forms', () => {
    assert.equal(resp.simple('OK').toString(), '+OK\r\n');
    assert.equal(resp.error('ERR bad\r\nthing').toString(), '-ERR bad  thing\r\n');
    assert.equal(resp.integer(-3).toString(), ':-3\r\n');
    assert.equal(resp.bulk(Buffer.from([0, 255])).toString('latin1'), '$2\r\n\u0000\u00ff\r\n');
    assert.equal(resp.nil(false).toString(), '$-1\r\n');
    assert.equal(resp.nil(true).toString(), '_\r\n');
    assert.equal(resp.array([resp.integer(1), resp.bulk('a')]).toString(), '*2\r\n:1\r\n$1\r\na\r\n');
    assert.equal(resp.map([[resp.bulk('k'), resp.integer(1)]], true).toString(), '%1\r\n$1\r\nk\r\n:1\r\n');
    assert.equal(resp.map([[resp.bulk('k'), resp.integer(1)]], false).toString(), '*2\r\n$1\r\nk\r\n:1\r\n');
  });
});
