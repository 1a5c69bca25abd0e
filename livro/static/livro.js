// livro/reader.py: sphinx-togglebutton writes its buttons' label in English, in JavaScript;
// this runs after it (same event, registered later) and labels them in Portuguese.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.toggle-button[aria-label='Toggle hidden content']")
    .forEach((button) => button.setAttribute("aria-label", "Mostrar ou ocultar"));
});
