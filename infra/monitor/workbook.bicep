// The triage workbook (workbook.json): failures per account from the watched workspaces; decisions, grants and
// escalations from the service's own log lines in its workspace. The JSON holds placeholders for the resources.
param location string
param tags object = {}
param functionAppName string
param serviceWorkspaceId string
param watchedWorkspaceIds array

var template = loadTextContent('workbook.json')
var withService = replace(replace(template, '__SERVICE_WORKSPACE__', serviceWorkspaceId), '__FUNCTION_APP__', functionAppName)
// The watched list is an array in the JSON: the placeholder array is replaced by the real one, serialized.
var serialized = replace(withService, '"__WATCHED_WORKSPACES__"', join(map(watchedWorkspaceIds, id => '"${id}"'), ', '))

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, functionAppName, 'triage-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Entra ID 401/403 triage (${functionAppName})'
    category: 'workbook'
    sourceId: serviceWorkspaceId
    serializedData: serialized
  }
}

output id string = workbook.id
