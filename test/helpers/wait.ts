/** Polls `done` every 50 ms until it holds, or fails after `timeoutMs` naming `what`. */
export async function until(done: () => Promise<boolean>, what = 'the condition', timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
