// The alarm tone, made with WebAudio (no audio files): three short 880 Hz beeps.
let context = null;

function audio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  context ??= new Context();
  return context;
}

/** Call from a user gesture: browsers keep audio suspended until the user has touched the page. */
export function unlockSound() {
  const ctx = audio();
  if (ctx && ctx.state === "suspended") ctx.resume();
}

export function soundBlocked() {
  return !context || context.state !== "running";
}

export function beep() {
  const ctx = audio();
  if (!ctx) return;
  if (ctx.state === "suspended") ctx.resume();
  const start = ctx.currentTime + 0.05;
  for (let i = 0; i < 3; i += 1) {
    const at = start + i * 0.3;
    const oscillator = ctx.createOscillator();
    const gain = ctx.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
    oscillator.connect(gain).connect(ctx.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.22);
  }
}
