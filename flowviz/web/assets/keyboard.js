// Keyboard: Enter on a link inside a Dash DataTable follows it (the table otherwise takes Enter for itself).
document.addEventListener("keydown", function (e) {
  if (e.key === "Enter" && e.target && e.target.matches && e.target.matches(".dash-spreadsheet a[href]")) {
    e.preventDefault();
    e.stopPropagation();
    window.location.assign(e.target.href);
  }
}, true);
