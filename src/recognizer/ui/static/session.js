// Who is using the page. GET /v1/session says whether this server needs a login, who is logged
// in, what they may do (scopes) and the CSRF token that every state-changing request sends as
// X-CSRF-Token (the session cookie itself is HttpOnly: the page never sees it). Where a login is
// needed and nobody is logged in, the page shows a login form instead of its tabs; any 401 later
// (the session expired, a password changed) brings the form back.
const $ = (id) => document.getElementById(id);
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const ENDED = "Your session ended; log in again.";

export const session = {
  active: false, // the app is shown: logged in, or the server runs open
  user: null,
  role: null,
  scopes: null, // a Set; null: unknown (the server is the judge)
  csrf: null,
  loginRequired: false,
};

const listeners = { in: [], out: [] };
const view = { login: $("login-view"), app: [$("app-tabs"), $("app-view")], whoami: $("whoami") };
const form = $("login-form"), error = $("login-error");

function show(el, visible) { el.hidden = !visible; }

/** Whether this session may use a scope (unknown scopes: yes, and the server decides). */
export function can(scope) { return session.scopes === null || session.scopes.has(scope); }

/** fn(session) each time the app is shown: at once if it is, and after every login. */
export function onSignedIn(fn) {
  listeners.in.push(fn);
  if (session.active) queueMicrotask(() => fn(session));
}

/** fn() each time the page goes back to the login form (log out, or the session ended). */
export function onSignedOut(fn) { listeners.out.push(fn); }

/** The problem's detail (application/problem+json), else the status line. */
export async function problem(response) {
  try {
    const body = await response.json();
    if (body && (body.detail || body.title)) return body.detail || body.title;
  } catch (err) { /* not JSON: a proxy's page, say */ }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

/** fetch() for the API: state-changing requests carry the CSRF token; a 401 means the login is gone. */
export async function api(url, options = {}, retried = false) {
  const method = (options.method || "GET").toUpperCase();
  const headers = new Headers(options.headers || {});
  const token = SAFE_METHODS.has(method) ? null : session.csrf;
  if (token) headers.set("X-CSRF-Token", token);
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401 && session.active) {
    signOut(session.user ? ENDED : "This server now needs you to log in.");
  } else if (response.status === 403 && token && !retried && (await renewed(token))) {
    return api(url, options, true); // refused before it did anything: safe to send again
  }
  return response;
}

/** After a 403 to a state-changing request: was our token stale, the same user having logged in
 * again in another tab (a new cookie, a new token)? Then take the new one and send again. Another
 * user's cookie: the page follows it. The same token: a real refusal (the role lacks the scope). */
async function renewed(sent) {
  let info;
  try {
    const response = await fetch("/v1/session", { headers: { Accept: "application/json" } });
    if (!response.ok) return false;
    info = await response.json();
  } catch (err) { return false; }
  if (!info.csrf_token || info.csrf_token === sent || !session.active) return false;
  if (info.user !== session.user) {
    switchTo(info);
    return false;
  }
  adopt(info); // the role may have changed too
  paintWho();
  return true;
}

function adopt(info) {
  session.user = info.user || null;
  session.role = info.role || null;
  session.scopes = Array.isArray(info.scopes) ? new Set(info.scopes) : null;
  session.csrf = info.csrf_token || null;
  session.loginRequired = Boolean(info.login_required);
}

function paintWho() {
  $("who-name").textContent = session.user || "";
  $("who-role").textContent = session.role ? `(${session.role})` : "";
  show(view.whoami, Boolean(session.user));
}

function showApp() {
  session.active = true;
  paintWho();
  show(view.login, false);
  for (const el of view.app) show(el, true);
  for (const fn of listeners.in) fn(session);
}

function showLogin(message = "") {
  session.active = false;
  for (const el of view.app) show(el, false);
  show(view.whoami, false);
  show(view.login, true);
  error.textContent = message;
  show(error, Boolean(message));
  form.elements.password.value = "";
  (form.elements.username.value ? form.elements.password : form.elements.username).focus();
}

function signOut(message) {
  const was = session.active;
  adopt({ login_required: true });
  session.scopes = new Set();
  showLogin(message);
  if (was) for (const fn of listeners.out) fn();
}

/** Another user's session under this page (a login in another tab): start over as them. */
function switchTo(info) {
  signOut(ENDED);
  adopt(info);
  if (!session.loginRequired || session.user) showApp();
}

async function logIn(e) {
  e.preventDefault();
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  show(error, false);
  let message = "";
  try {
    const response = await fetch("/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: form.elements.username.value, password: form.elements.password.value }),
    });
    if (response.ok) {
      adopt(await response.json());
      form.elements.password.value = "";
      showApp();
      document.querySelector('#app-tabs [aria-selected="true"]').focus(); // not the hidden form's button
      return;
    }
    if (response.status === 429) {
      const wait = Number.parseInt(response.headers.get("Retry-After") || "", 10);
      message = `Too many attempts: try again in ${Number.isFinite(wait) ? `${wait} s` : "a minute"}.`;
    } else {
      const detail = await problem(response);
      message = `${detail.charAt(0).toUpperCase()}${detail.slice(1)}${/[.!?]$/.test(detail) ? "" : "."}`;
    }
  } catch (err) {
    message = "The server could not be reached.";
  } finally {
    button.disabled = false;
  }
  error.textContent = message;
  show(error, true);
  form.elements.password.select();
}

async function logOut() {
  try {
    await api("/v1/session", { method: "DELETE" });
  } catch (err) { /* unreachable: the cookie may outlive this page, the form shows anyway */ }
  signOut("");
}

async function start() {
  let info = null;
  try {
    const response = await fetch("/v1/session", { headers: { Accept: "application/json" } });
    if (response.ok) info = await response.json();
  } catch (err) { /* unreachable: the app shows, and its own requests say what is wrong */ }
  if (info === null) { // an older server, or none: behave as before logins existed
    showApp();
  } else {
    adopt(info);
    if (session.loginRequired && !session.user) showLogin();
    else showApp();
  }
}

form.addEventListener("submit", logIn);
$("logout").addEventListener("click", logOut);
start();
