import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ProcessCluster } from './support/process-cluster.js';

/** The dashboard in a real browser (Debian's chromium, driven by playwright-core). */
describe('the dashboard', () => {
  const cluster = new ProcessCluster(['w1', 'w2', 'w3']);
  let browser: Browser;
  let page: Page;

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    await cluster.stopAll();
  });

  const leaderRow = (p: Page): Promise<string | null> => p.evaluate(() => document.querySelector('#nodes tr.leader')?.getAttribute('data-node') ?? null);

  it('shows the three nodes with the leader, then the new leader after kill -9 of the old one', async () => {
    const leader = await cluster.leader();
    const viewer = cluster.ids.find((id) => id !== leader) as string;
    await page.goto(`${cluster.http(viewer)}/`);
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 3 && document.querySelector('#nodes tr.leader') !== null, null, { timeout: 10_000 });
    assert.equal(await leaderRow(page), leader);
    assert.equal(await page.locator('#nodes tbody tr').count(), 3);

    await cluster.kill(leader);
    await page.waitForFunction((old) => {
      const row = document.querySelector('#nodes tr.leader');
      return row !== null && row.getAttribute('data-node') !== old && document.querySelector(`#nodes tr[data-node="${old}"]`)?.className === 'down';
    }, leader, { timeout: 15_000 });
    const next = await leaderRow(page);
    assert.notEqual(next, leader);
    assert.equal(next, await cluster.leader(cluster.ids.filter((id) => id !== leader)));
    await page.waitForFunction(() => document.querySelectorAll('#elections tbody tr').length > 0, null, { timeout: 10_000 });
    cluster.start(leader);
  });

  it('hands leadership over from the Switchover button, after asking for confirmation', async () => {
    await cluster.converged();
    const leader = await cluster.leader();
    await page.waitForFunction((id) => document.querySelector('#nodes tr.leader')?.getAttribute('data-node') === id && document.querySelectorAll('#target option').length === 2, leader, { timeout: 10_000 });
    const target = await page.locator('#target').inputValue();
    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await page.click('#switchover');
    await page.waitForFunction(() => /leadership moved from/.test(document.getElementById('opresult')?.textContent ?? ''), null, { timeout: 15_000 });
    assert.equal(asked, `Hand leadership to ${target}?`);
    assert.equal(await cluster.leader(), target);
  });
});
