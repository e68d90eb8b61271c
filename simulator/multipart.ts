/** A file from a multipart upload plus the plain fields sent with it. */
export interface MultipartUpload {
  fields: Record<string, string>
  file: { name: string; type: string; bytes: Buffer } | null
}

/**
 * Parses multipart/form-data with the platform's own parser (the fetch Response), so the
 * simulator needs no multipart dependency.
 */
export async function parseMultipart(body: Buffer, contentType: string): Promise<MultipartUpload> {
  const form = await new Response(new Blob([new Uint8Array(body)]), { headers: { 'content-type': contentType } }).formData()
  const fields: Record<string, string> = {}
  let file: MultipartUpload['file'] = null
  for (const [name, value] of form.entries()) {
    if (typeof value === 'string') fields[name] = value
    else if (name === 'file' && file === null) {
      file = { name: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) }
    }
  }
  return { fields, file }
}
