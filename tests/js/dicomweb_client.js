// dicomweb-client (the JavaScript DICOMweb library OHIF and Slim use) against medcodec serve.
// Usage: node dicomweb_client.js BASE_URL STUDY_UID FILE_TO_STORE
// Prints one JSON object: what each call returned (sizes, first bytes), or {"error": ...} and exit 1.
// Node has no XMLHttpRequest: xhr2 provides it, as a browser would.
global.XMLHttpRequest = require('xhr2');
const fs = require('fs');
const { api } = require('dicomweb-client');

const [base, studyUID, storePath] = process.argv.slice(2);
const client = new api.DICOMwebClient({ url: base });
const hex = (buf, n) => Buffer.from(buf).subarray(0, n).toString('hex');

(async () => {
  const out = {};
  const studies = await client.searchForStudies({ queryParams: { StudyInstanceUID: studyUID } });
  out.studies = studies.map((s) => s['0020000D'].Value[0]);
  const series = await client.searchForSeries({ studyInstanceUID: studyUID });
  const seriesUID = series[0]['0020000E'].Value[0];
  const instances = await client.searchForInstances({ studyInstanceUID: studyUID, seriesInstanceUID: seriesUID,
    queryParams: { limit: 2 } });
  out.instancesLimited = instances.length;
  const sopUID = instances[0]['00080018'].Value[0];
  const ids = { studyInstanceUID: studyUID, seriesInstanceUID: seriesUID, sopInstanceUID: sopUID };
  const metadata = await client.retrieveSeriesMetadata({ studyInstanceUID: studyUID, seriesInstanceUID: seriesUID });
  out.metadata = metadata.length;
  out.rows = metadata[0]['00280010'].Value[0];
  out.columns = metadata[0]['00280011'].Value[0];
  const pixelURI = metadata[0]['7FE00010'].BulkDataURI;
  const bulk = await client.retrieveBulkData({ BulkDataURI: pixelURI });
  out.bulkPixelBytes = (Array.isArray(bulk) ? bulk[0] : bulk).byteLength;
  const single = new api.DICOMwebClient({ url: base, singlepart: 'bulkdata' });  // as OHIF can be configured
  const one = await single.retrieveBulkData({ BulkDataURI: pixelURI });
  out.singlePixelBytes = (Array.isArray(one) ? one[0] : one).byteLength;
  const raw = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [1] });
  out.rawFrameBytes = raw[0].byteLength;
  const jpeg = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [1],
    mediaTypes: [{ mediaType: 'image/jpeg', transferSyntaxUID: '1.2.840.10008.1.2.4.51' }] });
  out.jpegFrameBytes = jpeg[0].byteLength;
  out.jpegFrameStart = hex(jpeg[0], 2);
  const instance = await client.retrieveInstance(ids);
  out.instancePreamble = Buffer.from(instance).subarray(128, 132).toString();
  const rendered = await client.retrieveInstanceRendered({ ...ids, mediaTypes: [{ mediaType: 'image/png' }] });
  const png = Array.isArray(rendered) ? rendered[0] : rendered;
  out.renderedStart = Buffer.from(png).subarray(1, 4).toString();
  const data = fs.readFileSync(storePath);
  await client.storeInstances({ datasets: [data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)] });
  out.stored = true;
  console.log(JSON.stringify(out));
})().catch((err) => {
  console.log(JSON.stringify({ error: String((err && err.message) || err), status: err && err.status }));
  process.exit(1);
});
