// What the page's side panels (Memory, Documents, Operations) share: an error line, a
// change that shows its error and reloads the list, and the button that opens the dialog.

/** A function that shows `message` on the panel's error line `node`, or hides it for "". */
export function errorLine(node) {
  return (message) => {
    node.textContent = message;
    node.hidden = !message;
  };
}

/** Runs a change, shows its error (`show`) if it fails, and `reload`s the list either way. */
export async function change(show, action, reload) {
  show("");
  try {
    await action();
  } catch (error) {
    show(error.message);
  }
  await reload();
}

/** `button` opens `dialog` with its error line cleared, then `load`s what it shows. */
export function opens(button, dialog, show, load) {
  button.addEventListener("click", () => {
    show("");
    dialog.showModal();
    load();
  });
}
