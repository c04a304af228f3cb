/** The data converter every Temporal client and worker of ours uses: the encrypting payload codec
 * and the failure converter that moves error texts into (encrypted) payloads. */
import type { DataConverter, PayloadCodec } from '@temporalio/common';

/** Path of the failure converter that moves failure messages and stack traces into an (encrypted)
 * payload; it is loaded inside the workflow sandbox too, hence a path and a separate module. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The production data converter: the default payload converter, failure messages as payloads,
 * and the encrypting codec. Used by the API's client, the worker, the recorder and the replayer. */
export function dataConverterWith(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_PATH };
}
