// Log search alert rules from alerts.json: the service's own health (its workspace's AppTraces, to the operators'
// action group), and the 401/403 failure alert on each watched workspace (to the action group that calls the
// service's alerts function). The rules query as the service's identity, which reads every one of those workspaces.
param location string
param tags object = {}
param identityId string
param functionAppName string
param serviceWorkspaceId string
param watchedWorkspaceIds array
param operatorsActionGroupId string
param triageActionGroupId string
@description('Minutes between two timer scans (TRIAGE_SCAN_SCHEDULE): "no successful scan" waits 3 of them.')
param scanPeriodMinutes int
param grantsPerHourThreshold int

var rules = loadJsonContent('alerts.json')
var failures = rules.failures

resource serviceRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for rule in rules.service: {
  name: 'triage-${rule.name}-${functionAppName}'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      serviceWorkspaceId
    ]
    evaluationFrequency: 'PT${rule.?frequencyMinutes ?? 5}M'
    // A rule's window is either fixed (windowMinutes) or a number of scan periods (windowScanPeriods).
    windowSize: 'PT${(rule.?windowMinutes ?? 0) + (rule.?windowScanPeriods ?? 0) * scanPeriodMinutes}M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'let TriageApp = \'${functionAppName}\';\n${rule.query}'
          timeAggregation: rule.timeAggregation
          metricMeasureColumn: rule.?metricMeasureColumn
          operator: rule.operator
          // The grants rule has no fixed threshold: it is the deployment's grantsPerHourThreshold.
          threshold: rule.?threshold ?? grantsPerHourThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        operatorsActionGroupId
      ]
    }
  }
}]

resource failureRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for (workspaceId, i) in watchedWorkspaceIds: {
  name: 'triage-${failures.name}-${i}-${functionAppName}'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    displayName: failures.displayName
    description: failures.description
    severity: failures.severity
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT${failures.windowMinutes}M'
    windowSize: 'PT${failures.windowMinutes}M'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: failures.query
          timeAggregation: failures.timeAggregation
          operator: failures.operator
          threshold: failures.threshold
          // One alert per account, so the alert's configurationItems name the account the service should scan.
          dimensions: [
            {
              name: failures.dimension
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        triageActionGroupId
      ]
    }
  }
}]
