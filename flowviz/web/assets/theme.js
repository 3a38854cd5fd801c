// flowviz theme: light or dark. The choice made with the header's toggle is kept in localStorage; without one
// the browser's prefers-color-scheme decides. The root element gets the class "dark" (style.css switches its
// colour variables on it) and the cookie flowviz_theme tells the server which theme to draw the figures in.
// Dash loads this file before it renders anything, so the first page and its figures already have the theme.
(function () {
  "use strict";

  var KEY = "flowviz-theme";

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (e) {  // storage disabled: follow the browser
      return null;
    }
  }

  function preferred() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function apply(theme) {
    document.documentElement.classList.toggle("dark", theme === "dark");
    document.cookie = "flowviz_theme=" + theme + "; path=/; max-age=31536000; SameSite=Lax";
  }

  apply(stored() || preferred());

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.flowviz = {
    // The toggle's clientside callback -> [theme store, the button's aria-pressed]. On page load (no click yet)
    // it only sets aria-pressed; each click switches the theme and remembers it, and the store's new value
    // makes the server redraw the figures on the page.
    toggleTheme: function (clicks) {
      var dark = document.documentElement.classList.contains("dark");
      if (!clicks) {
        return [window.dash_clientside.no_update, String(dark)];
      }
      dark = !dark;
      try { window.localStorage.setItem(KEY, dark ? "dark" : "light"); } catch (e) { /* not remembered */ }
      apply(dark ? "dark" : "light");
      return [dark ? "dark" : "light", String(dark)];
    }
  };
})();
