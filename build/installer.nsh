; Included by electron-builder's NSIS installer (electron-builder.config.js, nsis.include).
; Adds "Open in FeatureTrace" to the context menu of every folder in Explorer, for the user (or the
; machine) the app is installed for; the app opens the folder as a project. Removed on uninstall.
; (.ftproj files are associated by electron-builder itself, from fileAssociations.)
!macro customInstall
  WriteRegStr SHELL_CONTEXT "Software\Classes\Directory\shell\FeatureTrace" "" "Open in FeatureTrace"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Directory\shell\FeatureTrace" "Icon" "$appExe,0"
  WriteRegStr SHELL_CONTEXT "Software\Classes\Directory\shell\FeatureTrace\command" "" '"$appExe" "%1"'
!macroend

!macro customUnInstall
  DeleteRegKey SHELL_CONTEXT "Software\Classes\Directory\shell\FeatureTrace"
!macroend
