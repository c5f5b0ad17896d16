// Render the maths that pymdownx.arithmatex (generic mode) leaves as \( \) and \[ \] spans, with
// the KaTeX copy shipped in docs/vendor: the site needs no network to show its formulas.
document$.subscribe(({ body }) => {
  for (const element of body.querySelectorAll(".arithmatex")) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      // A formula KaTeX cannot parse shows in red (class katex-error); the browser test fails on it.
      throwOnError: false,
    });
  }
});
