// The sign-in page: POST /login as JSON, then go where the user was headed (a path on
// this site only, never another site named in ?next=).
const form = document.querySelector("#login");
const problem = document.querySelector("#login-error");

function destination() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const body = { name: form.elements.name.value, password: form.elements.password.value };
  let response;
  try {
    response = await fetch("/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch {
    response = null;
  }
  if (response?.ok) {
    location.assign(destination());
    return;
  }
  const data = await response?.json().catch(() => null);
  problem.textContent = data?.error?.message || "The server could not be reached; try again.";
  problem.hidden = false;
  form.elements.password.select();
});
