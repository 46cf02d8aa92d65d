// matrix-js-sdk as the Node tests use it. The SDK logs every request at
// debug level and every 401 at error level; that drowns the test report, so
// it is silent unless AUTHD_E2E_SDK_LOG names a level (e.g. debug).
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel(process.env.AUTHD_E2E_SDK_LOG || "silent");

export * from "matrix-js-sdk";
