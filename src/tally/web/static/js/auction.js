// The auction room: the server streams the auction's state (server-sent events) whenever it
// changes; the page shows it and counts down to the end (which a late bid may push back).
(() => {
  const room = document.getElementById("auction-room");
  if (!room || !window.EventSource) return;
  const field = (name) => room.querySelector(`[data-field="${name}"]`);
  const label = (name) => room.getAttribute(`data-label-${name}`) || "";
  let state = JSON.parse(room.getAttribute("data-state"));

  const pad = (n) => String(n).padStart(2, "0");
  function countdown() {
    const target = field("countdown");
    if (!target) return;
    const left = Math.max(0, Math.floor((Date.parse(state.ends_at) - Date.now()) / 1000));
    if (left === 0 || !["open", "scheduled"].includes(state.status)) {
      target.textContent = label("ended");
      return;
    }
    const hours = Math.floor(left / 3600);
    target.textContent = `${pad(hours)}:${pad(Math.floor((left % 3600) / 60))}:${pad(left % 60)}`;
  }

  function show(next) {
    state = next;
    room.dataset.version = String(next.version);
    field("price").textContent = String(next.price);
    field("bids").textContent = String(next.bids);
    field("status").textContent = room.getAttribute(`data-phase-${next.status}`) || next.status;
    field("leader").textContent = next.you_lead ? label("lead") : next.leader || label("none");
    const standing = field("standing");
    if (standing && !standing.hidden) {
      standing.textContent = next.you_won ? label("won") : next.you_lead ? label("lead") : label("outbid");
    }
    const minimum = field("minimum");
    if (minimum && next.minimum_bid !== null) {
      minimum.min = String(next.minimum_bid);
      if (Number(minimum.value) < next.minimum_bid) minimum.value = String(next.minimum_bid);
    }
    const note = field("minimum-note");
    if (note && next.minimum_bid !== null) {
      note.textContent = note.getAttribute("data-template").replace("{n}", String(next.minimum_bid));
    }
    if (next.minimum_bid === null) {
      const form = room.querySelector("form.m-bid");
      if (form) form.hidden = true;
    }
    countdown();
  }

  const source = new EventSource(room.getAttribute("data-events-url"));
  source.onmessage = (event) => show(JSON.parse(event.data));
  source.addEventListener("closed", () => source.close());
  countdown();
  setInterval(countdown, 1000);
})();
