import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// HTML text built in Swift: every value goes through ``HTML/escape(_:)``; pages share one layout.
enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// The security headers of every UI answer: nothing but this origin, no framing, no sniffing.
    static let headers: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        .xContentTypeOptions: "nosniff", .referrerPolicy: "no-referrer", .xFrameOptions: "DENY",
    ]

    static let sections: [(path: String, title: String)] = [
        ("/ui/", "Dashboard"), ("/ui/keys", "Keys"), ("/ui/users", "Users"), ("/ui/providers", "Providers"), ("/ui/usage", "Usage"),
        ("/ui/settings", "Settings"), ("/ui/help", "Help"),
    ]

    /// A whole page: navigation, the CSRF token for the script, the content.
    static func page(title: String, active: String, csrf: String, _ body: String) -> Response {
        let nav = sections.map { s in
            "<a href=\"\(s.path)\"\(s.path == active ? " aria-current=\"page\"" : "")>\(s.title)</a>"
        }.joined()
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="csrf-token" content="\(escape(csrf))"><title>\(escape(title)) · Tollgate</title>
            <link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/app.css"><script src="/ui/app.js" defer></script></head>
            <body><a class="skip" href="#main">Skip to content</a>
            <header><span class="brand">Tollgate</span><nav aria-label="Sections">\(nav)</nav>
            <button type="button" class="link" data-api="POST /api/logout" data-then="/ui/login">Log out</button></header>
            <main id="main"><h1>\(escape(title))</h1>
            <p class="notice" role="alert" hidden></p>
            \(body)
            </main></body></html>
            """
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A page without navigation (the login page).
    static func bare(title: String, _ body: String) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Tollgate</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/app.css"><script src="/ui/app.js" defer></script></head>
            <body class="bare"><main id="main">\(body)</main></body></html>
            """
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ to: String) -> Response {
        Response(status: .seeOther, headers: [.location: to, .cacheControl: "no-store"])
    }

    /// A table with a header row; cells are already HTML.
    static func table(_ header: [String], _ rows: [[String]], caption: String? = nil, empty: String = "Nothing yet.") -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">\(escape(empty))</p>" }
        let head = header.map { "<th scope=\"col\">\(escape($0))</th>" }.joined()
        let body = rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return "<div class=\"scroll\"><table>\(caption.map { "<caption>\(escape($0))</caption>" } ?? "")<thead><tr>\(head)</tr></thead><tbody>\(body)</tbody></table></div>"
    }

    /// A labelled input; `type` is the script's conversion (`int`, `list`, `json`, `string`, `date`).
    static func field(
        _ name: String, _ label: String, value: String? = nil, type: String = "string", input: String = "text", hint: String? = nil, required: Bool = false,
        emptyIsNull: Bool = false, omitEmpty: Bool = false
    ) -> String {
        let id = "f-" + name
        let hintHTML = hint.map { "<small id=\"\(id)-hint\">\(escape($0))</small>" } ?? ""
        return """
            <label for="\(id)">\(escape(label))</label><input id="\(id)" name="\(name)" type="\(input)" data-type="\(type)"\(emptyIsNull ? " data-empty=\"null\"" : "")\(omitEmpty ? " data-omit-empty" : "") value="\(escape(value ?? ""))"\
            \(required ? " required" : "")\(hint != nil ? " aria-describedby=\"\(id)-hint\"" : "")>\(hintHTML)
            """
    }

    static func checkbox(_ name: String, _ label: String, checked: Bool) -> String {
        "<label class=\"check\"><input type=\"checkbox\" name=\"\(name)\" data-type=\"bool\"\(checked ? " checked" : "")> \(escape(label))</label>"
    }

    /// A usage bar against a limit (none: the count alone).
    static func bar(_ used: Int, _ limit: Int?, unit: String) -> String {
        guard let limit else { return "<span class=\"count\">\(number(used)) \(unit)</span>" }
        let over = used >= limit
        return "<span class=\"count\(over ? " over" : "")\">\(number(used)) / \(number(limit)) \(unit)</span><meter min=\"0\" max=\"\(max(limit, 1))\" value=\"\(min(used, limit))\" high=\"\(Double(limit) * 0.8)\" optimum=\"0\">\(used)</meter>"
    }

    /// Spend against a spending limit, in dollars (just the spend without a limit, nothing when both are nothing).
    static func spendBar(_ usedNanos: Int, _ limitNanos: Int?) -> String {
        guard let limit = limitNanos else { return usedNanos == 0 ? "" : "<span class=\"count\">$\(USDAmount.text(usedNanos))</span>" }
        let over = usedNanos >= limit
        return "<span class=\"count spend\(over ? " over" : "")\">$\(USDAmount.text(usedNanos)) / $\(USDAmount.text(limit))</span>"
            + "<meter class=\"spend\" min=\"0\" max=\"\(max(limit, 1))\" value=\"\(min(usedNanos, limit))\" high=\"\(Double(limit) * 0.8)\" optimum=\"0\">\(usedNanos)</meter>"
    }

    static func badge(_ text: String, _ kind: String) -> String { "<span class=\"badge \(kind)\">\(escape(text))</span>" }

    static func number(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0, i % 3 == 0, c != "-" { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }

    static func usd(_ nanos: Int) -> String { String(format: "$%.4f", Double(nanos) / 1e9) }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("x-content-type-options")!
    static let referrerPolicy = HTTPField.Name("referrer-policy")!
    static let xFrameOptions = HTTPField.Name("x-frame-options")!
}
