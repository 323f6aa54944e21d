/// The dashboard page at `/`: dashboard.html, embedded in the binary at build time
/// (`resources: [.embedInCode(…)]` in Package.swift), so nothing is read at run time.
enum Dashboard {
    static let response = HTTPResponse(
        status: 200, contentType: "text/html; charset=utf-8", body: PackageResources.dashboard_html,
        headers: [
            // Everything is inline and same-origin: nothing else may load, frame it or be posted to.
            ("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                + "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
        ])
}
