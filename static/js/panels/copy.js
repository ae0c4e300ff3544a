// Copy buttons ([data-copy]) next to payload blocks: copy the text of the <pre> in the same
// [data-copyable] block; when the clipboard is not available, select the text instead.

/** How long the button says "Copied" (or how to copy by hand). */
export const COPY_FEEDBACK_MS = 1500;

const LABEL = "Copy";

/** Handle every copy button under `root` (one listener; blocks may be added later). */
export function mountCopyButtons(root) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest?.("[data-copy]");
    if (!button || !root.contains(button)) return;
    const source = button.closest("[data-copyable]")?.querySelector("pre");
    if (!source) return;
    const text = source.textContent;
    try {
      if (!navigator.clipboard?.writeText) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      feedback(button, "Copied");
    } catch {
      selectText(source);
      feedback(button, "Press Ctrl+C");
    }
  });
}

function selectText(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  node.focus?.();
}

function feedback(button, text) {
  button.textContent = text;
  clearTimeout(Number(button.dataset.copyTimer));
  button.dataset.copyTimer = String(setTimeout(() => { button.textContent = LABEL; }, COPY_FEEDBACK_MS));
}
