// framewatch review console: live wall updates (server-sent events), keyboard review, decisions without a reload.
"use strict";

const csrf = () => document.body.dataset.csrf;

function text(tag, className, value) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = value;
  return node;
}

// Live wall -----------------------------------------------------------------------------------------------------
function tileFor(stream) {
  const tile = document.createElement("a");
  tile.className = "tile";
  tile.href = stream.href;
  tile.dataset.key = `${stream.domain}/${stream.name}`;
  return tile;
}

function fillTile(tile, stream) {
  tile.replaceChildren();
  if (stream.cover) {
    const img = document.createElement("img");
    img.src = stream.cover;
    img.alt = `cover of ${stream.name}`;
    tile.append(img);
  } else {
    tile.append(text("div", "nocover", "no safe frame yet"));
  }
  const caption = text("span", "caption", "");
  caption.append(text("b", "", stream.name), " ", text("span", "muted", `${stream.app} · ${stream.domain}`));
  if (stream.verdict) caption.append(" ", text("span", `badge ${stream.verdict.toLowerCase()}`, stream.verdict));
  tile.append(caption);
  tile.dataset.etag = stream.etag || "";
}

function startWall(wall) {
  const events = new EventSource(wall.dataset.events);
  const count = document.getElementById("count");
  events.addEventListener("stream", (message) => {
    const stream = JSON.parse(message.data);
    const key = `${stream.domain}/${stream.name}`;
    let tile = [...wall.querySelectorAll(".tile")].find((node) => node.dataset.key === key);
    if (!stream.live) {
      if (tile) tile.remove();
    } else {
      if (!tile) {
        tile = tileFor(stream);
        wall.append(tile);
      }
      fillTile(tile, stream);
    }
    const empty = document.getElementById("empty");
    const live = wall.querySelectorAll(".tile").length;
    if (empty) empty.hidden = live > 0;
    if (count) count.textContent = `${live} live`;
  });
}

// Review queue --------------------------------------------------------------------------------------------------
function startQueue(form) {
  const items = () => [...form.querySelectorAll(".item")];
  let current = 0;

  function focus(index) {
    const all = items();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((item, i) => item.classList.toggle("current", i === current));
    all[current].focus({ preventScroll: true });
    all[current].scrollIntoView({ block: "nearest" });
  }

  function nextUndecided(from) {
    const all = items();
    for (let i = from + 1; i < all.length; i++) if (!all[i].dataset.decision) return i;
    return Math.min(from + 1, all.length - 1);
  }

  async function decide(targets, decision) {
    if (!targets.length) return;
    const body = new URLSearchParams({ csrf: csrf(), decision });
    targets.forEach((item) => body.append("id", item.dataset.id));
    const answer = await fetch(form.action, {
      method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    const result = await answer.json();
    if (!answer.ok) {
      alert(result.message || "The decision was not recorded; try again.");
      return;
    }
    const decided = new Set(result.decided);
    for (const item of targets) {
      if (!decided.has(item.dataset.id)) continue;
      item.dataset.decision = decision;
      item.querySelector(".decision").textContent = decision === "violation" ? "violation" : "not a violation";
      item.querySelector("input[type=checkbox]").checked = false;
    }
    const status = document.querySelector(".notice") || form.parentNode.insertBefore(text("p", "notice", ""), form);
    status.setAttribute("role", "status");
    status.textContent = result.notice;
  }

  form.addEventListener("submit", (event) => {  // bulk buttons: the selected frames
    event.preventDefault();
    const selected = items().filter((item) => item.querySelector("input[type=checkbox]").checked);
    decide(selected, event.submitter.value);
  });
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-decide]");
    const item = event.target.closest(".item");
    if (item) focus(items().indexOf(item));
    if (button) decide([item], button.dataset.decide).then(() => focus(nextUndecided(current)));
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName)) {
      if (event.target.type !== "checkbox") return;
    }
    const item = items()[current];
    if (event.key === "j") focus(current + 1);
    else if (event.key === "k") focus(current - 1);
    else if (event.key === "x" && item) {
      const box = item.querySelector("input[type=checkbox]");
      box.checked = !box.checked;
    } else if ((event.key === "v" || event.key === "n") && item) {
      decide([item], event.key === "v" ? "violation" : "not_violation").then(() => focus(nextUndecided(current)));
    } else return;
    event.preventDefault();
  });
  focus(0);
}

document.addEventListener("DOMContentLoaded", () => {
  const wall = document.getElementById("wall");
  if (wall) startWall(wall);
  const queue = document.getElementById("queue");
  if (queue && queue.querySelector(".item")) startQueue(queue);
});
