/// The gateway's version, shown in the OpenAPI document and the CLI.
public enum TollgateVersion {
    public static let current = "0.6.0"
}
