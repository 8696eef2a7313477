// The page's views (Classify, History, Live) as accessible tabs (WAI-ARIA tabs pattern, automatic activation):
// arrow keys, Home and End move between them; the URL hash (#history) names the one shown,
// so it can be linked, reloaded and reached with the browser's back button.
const tabs = [...document.querySelectorAll('[role="tablist"] [role="tab"]')];
const hashOf = (tab) => (tab === tabs[0] ? "" : `#${tab.dataset.tab}`);
const panelOf = (tab) => document.getElementById(tab.getAttribute("aria-controls"));

function select(tab, { focus = false, push = false } = {}) {
  for (const other of tabs) {
    const on = other === tab;
    other.setAttribute("aria-selected", String(on));
    other.tabIndex = on ? 0 : -1;
    panelOf(other).hidden = !on;
  }
  document.body.dataset.tab = tab.dataset.tab;
  if (focus) tab.focus();
  if (push && location.hash !== hashOf(tab)) {
    history.pushState(null, "", hashOf(tab) || `${location.pathname}${location.search}`);
  }
  // history.js and live.js listen: they load (or refresh) their tab each time it is shown, and live.js
  // stops the camera and its event stream when another tab is
  document.dispatchEvent(new CustomEvent("recognizer:tab", { detail: tab.dataset.tab }));
}

function fromHash() {
  const name = location.hash.replace(/^#/, "");
  return tabs.find((tab) => tab.dataset.tab === name) || tabs[0];
}

for (const tab of tabs) {
  tab.addEventListener("click", () => select(tab, { push: true }));
  tab.addEventListener("keydown", (e) => {
    const at = tabs.indexOf(tab);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    select(tabs[(to + tabs.length) % tabs.length], { focus: true, push: true });
  });
}
function follow() { // back/forward, or an edited hash: both events may fire, the second finds nothing to do
  const tab = fromHash();
  if (tab.getAttribute("aria-selected") !== "true") select(tab);
}
window.addEventListener("popstate", follow);
window.addEventListener("hashchange", follow);
select(fromHash());
