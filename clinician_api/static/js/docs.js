// Starts Swagger UI on /docs over this API's own OpenAPI document (clinician_api/docs_ui.py serves the page).
// validatorUrl null: Swagger UI would otherwise ask an outside validator service about the document.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
