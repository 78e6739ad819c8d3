// The flash sale's countdown on a mall item page: each <time data-countdown="ISO"> counts down
// to its moment once a second ("2d 03:04:05" / "03:04:05"). The server renders the same text,
// so the page reads right without JavaScript; at zero the caption asks for a reload.
(() => {
  const clocks = [...document.querySelectorAll("time[data-countdown]")];
  if (!clocks.length) return;
  const pad = (value) => String(value).padStart(2, "0");
  const render = (clock, now) => {
    const left = Math.max(0, Math.floor((Date.parse(clock.dataset.countdown) - now) / 1000));
    const days = Math.floor(left / 86400);
    const rest = left % 86400;
    const time = `${pad(Math.floor(rest / 3600))}:${pad(Math.floor((rest % 3600) / 60))}:${pad(rest % 60)}`;
    const prefix = days > 0 ? `${(clock.dataset.days || "{d}d").replace("{d}", days)} ` : "";
    clock.textContent = prefix + time;
    return left;
  };
  const tick = () => {
    const now = Date.now();
    let running = false;
    for (const clock of clocks) {
      if (render(clock, now) > 0) {
        running = true;
      } else if (!clock.dataset.done) {
        clock.dataset.done = "true";
        const caption = document.querySelector("[data-sale-over]");
        if (caption) caption.textContent = caption.dataset.saleOver;
      }
    }
    if (running) window.setTimeout(tick, 1000 - (now % 1000));
  };
  tick();
})();
